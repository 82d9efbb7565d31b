import { CCATDataOperationError, type CcatErrorClass } from './base.js';
import { builtinErrorClasses, ValidationError } from './errors.js';
import type { SerializedError } from './serialize.js';

export interface DeserializeOptions {
  /** Extra CCAT error classes (another service's own) to rebuild by name. */
  readonly classes?: readonly CcatErrorClass[];
}

const MAX_DEPTH = 16;

function assertShape(value: unknown, path: string): asserts value is SerializedError {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`not a serialized error at ${path}: expected an object`, { context: { path } });
  }
  const v = value as Record<string, unknown>;
  for (const key of ['name', 'message'] as const) {
    if (typeof v[key] !== 'string') {
      throw new ValidationError(`not a serialized error at ${path}: "${key}" must be a string`, {
        context: { path, key },
      });
    }
  }
}

/**
 * Rebuilds an error from `serializeError` output: CCAT errors as their own class (code,
 * retryability, retry limit, context and cause chain intact); other errors as `Error` with their
 * name and code. Throws ValidationError when the input is not a serialized error.
 */
export function deserializeError(json: unknown, options: DeserializeOptions = {}): Error {
  const classes = new Map<string, CcatErrorClass>();
  for (const c of [...builtinErrorClasses, ...(options.classes ?? [])]) classes.set(c.name, c);

  const build = (value: unknown, depth: number, path: string): Error => {
    assertShape(value, path);
    const cause =
      value.cause !== undefined && depth < MAX_DEPTH
        ? build(value.cause, depth + 1, `${path}.cause`)
        : undefined;
    const known = classes.get(value.name);
    let error: Error;
    if (known !== undefined || typeof value.retryable === 'boolean') {
      const Cls = known ?? CCATDataOperationError;
      error = new Cls(value.message, {
        ...(value.code !== undefined && { code: value.code }),
        ...(value.retryable !== undefined && { retryable: value.retryable }),
        ...(value.maxRetries !== undefined && { maxRetries: value.maxRetries }),
        ...(value.context !== undefined && { context: value.context }),
        ...(cause !== undefined && { cause }),
      });
      if (known === undefined) error.name = value.name;
    } else {
      error = new Error(value.message, cause === undefined ? undefined : { cause });
      error.name = value.name;
      if (value.code !== undefined)
        Object.defineProperty(error, 'code', { value: value.code, enumerable: true });
    }
    if (value.stack !== undefined) error.stack = value.stack;
    return error;
  };
  return build(json, 0, '$');
}
