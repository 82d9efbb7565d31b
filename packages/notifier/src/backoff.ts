export interface BackoffOptions {
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** Fraction of the delay that is random, 0..1: the delay is cut by up to this much. */
  readonly jitter: number;
}

/**
 * The delay after `attempts` failed attempts: baseDelayMs · 2^(attempts−1), capped at maxDelayMs,
 * minus a random part of up to `jitter` of it (so relays that failed together do not retry together,
 * and the cap is never exceeded).
 */
export function backoffDelay(
  attempts: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, attempts - 1), 40);
  const capped = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** exponent);
  const jitter = Math.min(1, Math.max(0, options.jitter));
  return Math.max(0, Math.round(capped * (1 - jitter * random())));
}
