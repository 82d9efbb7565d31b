// Options parsing shared by the config schema and the channel factories: one readable line per
// problem (path, expected, got), secrets masked, the result frozen.
import { ConfigurationError, describeThrown } from '@ccat/errors';
import type { z } from 'zod';

const SECRET_PATH = /pass|token|secret/i;

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v = input;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** What was given, without ever dumping a structure (it may hold a secret elsewhere in it). */
function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value.slice(0, 80));
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).slice(0, 10);
    return keys.length === 0 ? 'an empty object' : `an object with ${keys.join(', ')}`;
  }
  return describeThrown(value, 80);
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
    const got = issue.path.some((p) => SECRET_PATH.test(String(p)))
      ? '[REDACTED]'
      : show(valueAt(input, issue.path));
    return `${path}: ${issue.message}; got ${got}`;
  });
  throw new ConfigurationError(`invalid ${prefix} configuration:\n${lines.join('\n')}`, {
    context: { problems: lines },
  });
}
