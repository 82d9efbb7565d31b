// What the single-row transitions and the batcher share: input checks, how values are stored, and
// what a claim and a completion write, so the two paths cannot drift apart.
import { sql, type RawBuilder } from 'kysely';
import {
  parseAttempt,
  parseOperationId,
  parseOperationType,
  type OperationRef,
  type OperationType,
} from '../operation-types.js';
import { storedJson } from '../sanitize.js';
import { stateColumn } from './state-sql.js';

/** Longest error message stored on a row or event; the full text belongs in logs. */
export const MAX_MESSAGE = 4000;

/** A JSON column's text: redacted, bounded and storable (`storedJson`); nothing becomes `{}`. */
export const json = (value: unknown): string => storedJson(value);

/** The reference checked and normalised (a bad type, id or attempt throws a ValidationError). */
export function checkRef(ref: OperationRef): OperationRef {
  return {
    type: parseOperationType(ref.type),
    id: parseOperationId(ref.id),
    attempt: parseAttempt(ref.attempt),
  };
}

/** The operation_events columns every transition's event row fills, in this order. */
export const EVENT_COLUMNS = sql.raw(
  'operation_events (operation_type, operation_id, attempt, event, error_code, error_class, message, retryable, context, worker_id)',
);

/** What a claim sets (scheduled → in_progress), with `claimedBy` as the claimer's expression. */
export function claimSets(type: OperationType, claimedBy: RawBuilder<unknown>): RawBuilder<unknown>[] {
  const c = (n: Parameters<typeof stateColumn>[1]) => stateColumn(type, n);
  return [
    sql`${c('status')} = 'in_progress'`,
    sql`${c('claimed_by')} = ${claimedBy}`,
    sql`${c('started_at')} = now()`,
    sql`${c('last_seen_at')} = now()`,
    sql`${c('finished_at')} = NULL`,
    sql`${c('progress_bytes')} = 0`,
  ];
}

/** What a completion sets (in_progress → completed). */
export function completeSets(type: OperationType): RawBuilder<unknown>[] {
  return [
    sql`${stateColumn(type, 'status')} = 'completed'`,
    sql`${stateColumn(type, 'finished_at')} = now()`,
    sql`${stateColumn(type, 'last_seen_at')} = now()`,
  ];
}
