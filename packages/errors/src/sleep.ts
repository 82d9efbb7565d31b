// The one abortable sleep: waits between retries (with the backoff beside it) and in loops that an
// AbortSignal ends.

/**
 * Resolves after `ms` (negative counts as 0) with `false`, or early with `true` once `signal` aborts
 * (at once when it already has). Never rejects, so a retry loop reads `if (await sleep(d, s)) stop`;
 * the timer and the abort listener are both removed whichever comes first. `ms` above 2^31 − 1 fires
 * at once (Node.js timers).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted === true) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve(false);
      },
      Math.max(0, ms),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
