/**
 * Collects the items added during one tick and hands them to `flush` once, on the next turn of the
 * event loop; every `add` of that tick resolves or rejects with that one flush.
 */
export class TickBatcher<T> {
  readonly #flush: (items: readonly T[]) => Promise<void>;
  #open: { readonly items: T[]; readonly done: Promise<void> } | undefined;

  constructor(flush: (items: readonly T[]) => Promise<void>) {
    this.#flush = flush;
  }

  add(item: T): Promise<void> {
    if (this.#open === undefined) {
      const items: T[] = [];
      const done = new Promise<void>((resolve, reject) => {
        setImmediate(() => {
          this.#open = undefined;
          this.#flush(items).then(resolve, reject);
        });
      });
      this.#open = { items, done };
    }
    this.#open.items.push(item);
    return this.#open.done;
  }
}
