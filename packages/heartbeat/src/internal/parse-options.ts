import { ConfigurationError, truncate, type CcatErrorClass } from '@ccat/errors';
import type { z } from 'zod';

export interface OptionProblem {
  readonly path: string;
  readonly expected: string;
  readonly got: string;
}

/** A short JSON-ish rendering of a value for "got …" in messages. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  try {
    return truncate(JSON.stringify(value) ?? typeof value, 60);
  } catch {
    return typeof value;
  }
}

function expectedOf(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.expected;
    case 'too_small':
      return issue.origin === 'string'
        ? `at least ${String(issue.minimum)} characters`
        : `${issue.origin} ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}`;
    case 'too_big':
      return issue.origin === 'string'
        ? `at most ${String(issue.maximum)} characters`
        : `${issue.origin} ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}`;
    case 'invalid_format':
      return issue.message;
    case 'not_multiple_of':
      return `a multiple of ${String(issue.divisor)}`;
    case 'invalid_value':
      return `one of ${issue.values.map((v) => describeValue(v)).join(', ')}`;
    default:
      return issue.message;
  }
}

/**
 * Parses options with defaults applied; throws ConfigurationError (or `errorClass`) with one
 * `path: expected X, got Y` per problem, also listed in `context.problems`.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  label: string,
  errorClass: CcatErrorClass = ConfigurationError,
): z.output<S> {
  const result = schema.safeParse(input ?? {}, { reportInput: true });
  if (result.success) return result.data;
  const problems: OptionProblem[] = [];
  for (const issue of result.error.issues) {
    const base = [label, ...issue.path.map(String)].join('.');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys)
        problems.push({ path: `${base}.${key}`, expected: 'no such option', got: 'a value' });
      continue;
    }
    problems.push({ path: base, expected: expectedOf(issue), got: describeValue(issue.input) });
  }
  const lines = problems.map((p) => `${p.path}: expected ${p.expected}, got ${p.got}`);
  throw new errorClass(`invalid ${label} options: ${lines.join('; ')}`, { context: { problems } });
}
