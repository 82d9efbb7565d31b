// The current state of several operations of one type at once (for lists of past events that say
// where each operation is now).
import { sql, type Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import { stateColumn } from './internal/state-sql.js';
import {
  OPERATION_TABLES,
  parseOperationId,
  parseOperationType,
  type OperationStatus,
  type OperationType,
} from './operation-types.js';
import type { Database } from './schema.js';

/** Where one operation is now. */
export interface CurrentState {
  readonly status: OperationStatus;
  readonly attempt: number;
  readonly retryCount: number;
  readonly lastErrorCode: string | null;
  readonly finishedAt: Date | null;
}

/**
 * The current state of each given operation of `type`, by id; ids without a row (or whose type has
 * no state on that row) are absent. One query; at most 10 000 ids. Throws the classified database
 * error, or a ValidationError for a bad type or id.
 */
export function currentStates(
  db: Kysely<Database>,
  type: OperationType,
  ids: readonly string[],
): Promise<Map<string, CurrentState>> {
  const t = parseOperationType(type);
  const wanted = [...new Set(ids.map((id) => parseOperationId(id)))].slice(0, 10_000);
  if (wanted.length === 0) return Promise.resolve(new Map<string, CurrentState>());
  return classified(async () => {
    const { rows } = await sql<{
      id: string;
      status: OperationStatus;
      attempt: number;
      retry_count: number;
      last_error_code: string | null;
      finished_at: Date | null;
    }>`
      SELECT id::text AS id, ${stateColumn(t, 'status')} AS status, ${stateColumn(t, 'attempt')} AS attempt,
        ${stateColumn(t, 'retry_count')} AS retry_count, ${stateColumn(t, 'last_error_code')} AS last_error_code,
        ${stateColumn(t, 'finished_at')} AS finished_at
      FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE id = ANY(${wanted}::bigint[]) AND ${stateColumn(t, 'status')} IS NOT NULL`.execute(db);
    return new Map<string, CurrentState>(
      rows.map((r) => [
        r.id,
        {
          status: r.status,
          attempt: r.attempt,
          retryCount: r.retry_count,
          lastErrorCode: r.last_error_code,
          finishedAt: r.finished_at,
        },
      ]),
    );
  });
}
