// A per-channel cap on messages per minute (sliding window) and a pause after a rate limit
// (Retry-After). Excess is never dropped: the caller waits, or defers and comes back.

const WINDOW_MS = 60_000;

export class RateGate {
  readonly #max: number;
  readonly #now: () => number;
  readonly #sent: number[] = [];
  #pausedUntil = 0;

  constructor(maxPerMinute: number, now: () => number) {
    this.#max = Math.max(1, Math.floor(maxPerMinute));
    this.#now = now;
  }

  /** Takes a slot and answers 0, or answers how many ms until one may be free (taking nothing). */
  take(): number {
    const t = this.#now();
    if (this.#pausedUntil > t) return this.#pausedUntil - t;
    while (this.#sent.length > 0 && this.#sent[0]! <= t - WINDOW_MS) this.#sent.shift();
    if (this.#sent.length < this.#max) {
      this.#sent.push(t);
      return 0;
    }
    return Math.max(1, this.#sent[0]! + WINDOW_MS - t);
  }

  /** No sends for `ms` (the server said so). */
  pause(ms: number): void {
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
  }
}
