// The failed operations a bulk retry would reset. A read: the reset itself goes row by row through
// manualRetry, fenced on the attempt read here, so a row that changed in between is left alone.
import { OPERATION_TABLES, type Database, type OperationType } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';

export interface FailedOperation {
  readonly id: string;
  readonly attempt: number;
  readonly retryCount: number;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
  /** When it was marked failed (null for rows failed by hand, outside the transitions). */
  readonly failedAt: Date | null;
}

export interface FailedSelection {
  readonly type: OperationType;
  /** Matches `last_error_code`. */
  readonly code?: string | undefined;
  /** Failed (finished_at) within this many ms; rows without finished_at never match a window. */
  readonly sinceMs?: number | undefined;
  readonly limit: number;
}

/** Failed rows of one type matching the selection, oldest id first, and how many match in all. */
export async function listFailedOperations(
  db: Kysely<Database>,
  selection: FailedSelection,
): Promise<{ rows: FailedOperation[]; total: number }> {
  const { table, prefix } = OPERATION_TABLES[selection.type];
  const col = (name: string) => sql.ref(`${prefix}${name}`);
  const where = [sql`${col('status')} = 'failed'`];
  if (selection.code !== undefined) where.push(sql`${col('last_error_code')} = ${selection.code}`);
  if (selection.sinceMs !== undefined)
    where.push(sql`${col('finished_at')} >= now() - make_interval(secs => ${selection.sinceMs / 1000})`);
  try {
    const { rows } = await sql<{
      id: string;
      attempt: number;
      retry_count: number;
      last_error_code: string | null;
      last_error_message: string | null;
      finished_at: Date | null;
      total: number;
    }>`
      SELECT id, ${col('attempt')} AS attempt, ${col('retry_count')} AS retry_count,
        ${col('last_error_code')} AS last_error_code, left(${col('last_error_message')}, 500) AS last_error_message,
        ${col('finished_at')} AS finished_at, count(*) OVER ()::int AS total
      FROM ${sql.table(table)} WHERE ${sql.join(where, sql` AND `)}
      ORDER BY id LIMIT ${selection.limit}`.execute(db);
    return {
      rows: rows.map((r) => ({
        id: String(r.id),
        attempt: r.attempt,
        retryCount: r.retry_count,
        lastErrorCode: r.last_error_code,
        lastErrorMessage: r.last_error_message,
        failedAt: r.finished_at,
      })),
      total: rows[0]?.total ?? 0,
    };
  } catch (e) {
    throw classifyError(e);
  }
}
