import { InvalidTaskIdError } from './errors.js';

/** Longest task id accepted; the apps' `${operationType}:${id}:${attempt}` stays far below it. */
export const TASK_ID_MAX_LENGTH = 256;

/**
 * Task ids are opaque to this package, but they are sorted-set members, log fields and CLI output, so
 * they are kept printable: letters, digits and `_ . : @ / + = -`, 1 to 256 characters.
 */
export const TASK_ID_PATTERN: RegExp = /^[A-Za-z0-9_.:@/+=-]{1,256}$/;

/** True when `value` is a task id this package accepts. */
export function isValidTaskId(value: unknown): value is string {
  return typeof value === 'string' && TASK_ID_PATTERN.test(value);
}

/** Returns `value` when it is a valid task id; throws `InvalidTaskIdError` (non-retryable) otherwise. */
export function assertTaskId(value: unknown, what = 'task id'): string {
  if (isValidTaskId(value)) return value;
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
      : typeof value;
  const why =
    typeof value !== 'string'
      ? 'not a string'
      : value.length === 0
        ? 'empty'
        : value.length > TASK_ID_MAX_LENGTH
          ? `${value.length} characters, at most ${TASK_ID_MAX_LENGTH} allowed`
          : 'characters outside [A-Za-z0-9_.:@/+=-]';
  throw new InvalidTaskIdError(`invalid ${what} ${shown}: ${why}`, {
    context: { length: typeof value === 'string' ? value.length : null },
  });
}
