// Who may run in this worker process at once: any number of tasks that share it, or one task that
// runs alone (issue 13.4: an operation present at repeated process deaths runs alone, so that the
// next death is unambiguously its own). Writer-preferring: while a task waits to run alone, no new
// shared task starts, so it waits only for the tasks already running.
import { OperationAbortedError } from '@ccat/errors';

/** Gives back what `shared()` / `alone()` took; safe to call twice. */
export type GateRelease = () => void;

/**
 * A readers-writer gate over one process's tasks. `shared()` resolves once no task runs alone or
 * waits to; `alone()` once no other task runs at all, and holds every later one off until released.
 * Both reject with OperationAbortedError when `signal` aborts while waiting (nothing taken then).
 * Owns no timer; a waiter costs one pending promise.
 */
export class ProcessGate {
  #shared = 0;
  #alone = false;
  #waitingAlone = 0;
  #waiters = new Set<() => void>();

  /** Tasks running now that share the process. */
  get sharing(): number {
    return this.#shared;
  }

  /** Whether a task runs alone now. */
  get aloneNow(): boolean {
    return this.#alone;
  }

  /** Waits until a shared task may start, then counts it in. */
  async shared(signal?: AbortSignal): Promise<GateRelease> {
    await this.#until(
      () => !this.#alone && this.#waitingAlone === 0,
      () => this.#shared++,
      signal,
    );
    return this.#once(() => this.#shared--);
  }

  /** Waits until nothing else runs, then runs alone until released. */
  async alone(signal?: AbortSignal): Promise<GateRelease> {
    this.#waitingAlone++;
    try {
      await this.#until(
        () => !this.#alone && this.#shared === 0,
        () => (this.#alone = true),
        signal,
      );
    } finally {
      this.#waitingAlone--;
      // A shared task waiting behind this one may go now if this one gave up.
      if (!this.#alone) this.#wake();
    }
    return this.#once(() => (this.#alone = false));
  }

  #once(undo: () => void): GateRelease {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      undo();
      this.#wake();
    };
  }

  #wake(): void {
    const waiters = [...this.#waiters];
    this.#waiters.clear();
    for (const w of waiters) w();
  }

  /**
   * Waits until `ready()`, then calls `take()` in the same synchronous step as the check that
   * passed: two waiters woken together cannot both pass (a check and a take split by an `await`
   * let two tasks run alone at once).
   */
  async #until(ready: () => boolean, take: () => unknown, signal: AbortSignal | undefined): Promise<void> {
    const stopped = () =>
      new OperationAbortedError('stopped while waiting to run', { cause: signal?.reason });
    while (!ready()) {
      if (signal?.aborted === true) throw stopped();
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          this.#waiters.delete(wake);
          reject(stopped());
        };
        const wake = () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.#waiters.add(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
    take();
  }
}
