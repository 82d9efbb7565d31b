/**
 * Settles with `work`, or rejects with the signal's reason as soon as `signal` aborts. For clients
 * that may not honour the signal themselves; the work is not stopped by this, only no longer awaited.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(toError(signal.reason));
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(toError(e));
      },
    );
  });
}

/** Whether `signal` has aborted (a call, so TypeScript does not keep an earlier narrowing). */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

const toError = (e: unknown): Error => (e instanceof Error ? e : new Error(String(e)));
