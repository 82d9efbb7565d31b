// What the single-row transitions and the batcher share: input checks and how values are stored.
import { toSafeJson } from '@ccat/errors';
import { parseAttempt, parseOperationId, parseOperationType, type OperationRef } from '../operation-types.js';

/** Longest error message stored on a row or event; the full text belongs in logs. */
export const MAX_MESSAGE = 4000;

/** A JSON column's text: hostile or odd values made safe, nothing becomes `{}`. */
export const json = (value: unknown): string => JSON.stringify(toSafeJson(value ?? {}));

/** The reference checked and normalised (a bad type, id or attempt throws a ValidationError). */
export function checkRef(ref: OperationRef): OperationRef {
  return {
    type: parseOperationType(ref.type),
    id: parseOperationId(ref.id),
    attempt: parseAttempt(ref.attempt),
  };
}
