// Polling with a deadline: every timing-sensitive test waits for its condition, never a fixed sleep.

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Said when the deadline passes. */
  readonly message?: string;
}

/** Polls until `check` returns a value that is not undefined/false, or fails at the deadline. */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitOptions = {},
): Promise<Exclude<T, undefined | false>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v as Exclude<T, undefined | false>;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      const why = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`${options.message ?? 'condition not met'} within ${timeoutMs} ms (last: ${why})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Settles with the outcome of `p` (its value, or the error it rejected with), or `'hung'` after `ms`,
 * so a hang fails an assertion rather than the whole run. Never rejects.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | Error | 'hung'> {
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), ms)));
  try {
    return await Promise.race([
      p.catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
