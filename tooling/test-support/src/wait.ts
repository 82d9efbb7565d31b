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
