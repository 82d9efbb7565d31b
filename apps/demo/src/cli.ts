// What the demo's command lines (ccat-demo, ccat-faults) share: integer flags and the usage error.

/** `--name`'s value as an integer from `min` to `max`; throws an Error saying what is wrong. */
export function intFlag(name: string, raw: string | undefined, min: number, max: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max)
    throw new Error(`--${name} must be an integer from ${min} to ${max}, got ${raw}`);
  return n;
}

/** Prints `program: <what is wrong>` and the usage on stderr; returns exit code 2 (a usage error). */
export function usageError(program: string, error: unknown, usage: string): 2 {
  console.error(`${program}: ${(error as Error).message}\n${usage}`);
  return 2;
}
