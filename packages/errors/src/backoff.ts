/** The one backoff's options (the same names wherever a backoff is configured). */
export interface BackoffOptions {
  /** Ceiling of the first delay, ms; the ceiling doubles with each further attempt. */
  readonly baseMs: number;
  /** No delay is longer than this, ms. */
  readonly maxMs: number;
}

/**
 * Exponential backoff with full jitter: the delay before retry number `retry` (1 = the first) is a
 * uniform draw in [0, min(maxMs, baseMs · 2^(retry−1))], in whole ms. Full jitter spreads clients that
 * failed together over the whole window, so they do not retry together; of the variants compared in
 * Marc Brooker, "Exponential Backoff and Jitter", AWS Architecture Blog (2015), it does the least work
 * for the same completion time. `retry` below 1 counts as 1; the exponent stops at 52 (past that the
 * ceiling is maxMs anyway). `random` is clamped to [0, 1] (tests pass 0 or 1 for the bounds).
 */
export function fullJitterDelayMs(
  retry: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const exponent = Math.min(Math.max(0, retry - 1), 52);
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** exponent);
  return Math.floor(Math.min(Math.max(random(), 0), 1) * Math.max(0, ceiling));
}

/**
 * The error option of a strict zod object that refuses renamed or removed keys saying what replaced
 * them (`{ capMs: 'renamed: use maxMs' }`): `z.strictObject(shape, renamedKeysError({...}))`. Other
 * unknown keys keep zod's own message. Used for the old names of the backoff options.
 */
export const renamedKeysError = (replaced: Readonly<Record<string, string>>) => ({
  error: (issue: { readonly code?: string; readonly keys?: readonly string[] }): string | undefined =>
    issue.code === 'unrecognized_keys' && issue.keys?.some((k) => Object.hasOwn(replaced, k))
      ? issue.keys
          .map((k) => `${k}: ${Object.hasOwn(replaced, k) ? replaced[k] : 'unrecognized key'}`)
          .join('; ')
      : undefined,
});
