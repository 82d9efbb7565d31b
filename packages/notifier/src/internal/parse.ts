// Options parsing shared by the config schema and the channel factories: one readable line per
// problem (path, expected, got), secrets masked, the result frozen.
import { ConfigurationError, describeConfigValue, redactSecrets } from '@ccat/errors';
import type { z } from 'zod';

/** The value at `path` inside `input` (objects only, e.g. a thrown error's `code`); undefined where none is. */
export function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Parses with a zod schema; throws a ConfigurationError listing every problem. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, prefix: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return deepFreeze(result.data);
  const lines = result.error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].join('.');
    // What was given, by the one rule for configuration errors: never a secret, never a structure.
    const got = describeConfigValue(valueAt(input, issue.path), issue.path.map(String));
    return `${path}: ${redactSecrets(issue.message, 300)}; got ${got}`;
  });
  throw new ConfigurationError(`invalid ${prefix} configuration:\n${lines.join('\n')}`, {
    context: { problems: lines },
  });
}
