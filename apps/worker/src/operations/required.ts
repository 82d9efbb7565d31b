import { ValidationError } from '@ccat/errors';

/** A row the operation needs, or a non-retryable error saying which is missing. */
export function required<T>(row: T | undefined, what: string): T {
  if (row === undefined) throw new ValidationError(`${what} does not exist`);
  return row;
}
