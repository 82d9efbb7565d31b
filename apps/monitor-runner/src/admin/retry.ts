// An operator's decision to run failed operations again (DESIGN §4: failed → pending, attempt+1,
// retry_count reset, event `manual_retry`). The list of failed rows is a read; every reset goes row
// by row through the fenced manualRetry on the attempt that was read, so a row that changed in
// between is reported, not overwritten.
import {
  manualRetry,
  OPERATION_TABLES,
  readOperation,
  type Database,
  type EventDetails,
  type OperationSnapshot,
  type OperationStatus,
  type OperationType,
} from '@ccat/db';
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
  /** This one operation only. */
  readonly id?: string | undefined;
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
  if (selection.id !== undefined) where.push(sql`id = ${selection.id}`);
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

/**
 * `retried`: reset to pending. `refused`: not failed, left alone. `not_found`: no such operation.
 * `changed`: it was failed when read but changed before the fenced reset, which then changed nothing.
 */
export type RetryOutcome = 'retried' | 'refused' | 'not_found' | 'changed';

export interface RetryState {
  readonly status: OperationStatus;
  readonly attempt: number;
  readonly retryCount: number;
  readonly lastErrorCode: string | null;
}

export interface RetryResult {
  readonly type: OperationType;
  readonly id: string;
  readonly outcome: RetryOutcome;
  readonly before: RetryState | null;
  readonly after: RetryState | null;
  /** The manual_retry event written with the reset. */
  readonly eventId: string | null;
}

export interface RetryDeps {
  readonly db: Kysely<Database>;
  /** Who asked: recorded as `cli:<operator>` in the event's worker_id. */
  readonly operator: string;
}

const state = (op: OperationSnapshot) => ({
  status: op.status,
  attempt: op.attempt,
  retryCount: op.retryCount,
  lastErrorCode: op.lastErrorCode,
});

/**
 * One fenced reset (failed → pending, attempt+1, retry count 0, event manual_retry naming
 * `cli:<operator>`): applies only while the row is still failed at `before.attempt`; otherwise
 * nothing changes and the outcome says why (`changed`, `not_found`). `context` goes into the event.
 */
export async function retryFailedRow(
  deps: RetryDeps,
  type: OperationType,
  before: Pick<FailedOperation, 'id' | 'attempt' | 'retryCount' | 'lastErrorCode'>,
  context: Record<string, unknown>,
): Promise<RetryResult> {
  const event: EventDetails = {
    workerId: `cli:${deps.operator}`,
    message: `manual retry by ${deps.operator} via ccat-recovery`,
    context: {
      via: 'ccat-recovery',
      previousErrorCode: before.lastErrorCode,
      previousRetryCount: before.retryCount,
      ...context,
    },
  };
  const shown = {
    status: 'failed' as const,
    attempt: before.attempt,
    retryCount: before.retryCount,
    lastErrorCode: before.lastErrorCode,
  };
  const result = await manualRetry(deps.db, type, before.id, { expectedAttempt: before.attempt }, { event });
  if (result.applied && result.operation !== undefined) {
    return {
      type,
      id: before.id,
      outcome: 'retried',
      before: shown,
      after: state(result.operation),
      eventId: result.eventId ?? null,
    };
  }
  const now = await readOperation(deps.db, type, before.id);
  return {
    type,
    id: before.id,
    outcome: now === undefined ? 'not_found' : 'changed',
    before: shown,
    after: now === undefined ? null : state(now),
    eventId: null,
  };
}

/** Retries one operation by id: `refused` (nothing changed) unless it is failed. */
export async function retryOperation(deps: RetryDeps, type: OperationType, id: string): Promise<RetryResult> {
  const before = await readOperation(deps.db, type, id);
  if (before === undefined) {
    return { type, id, outcome: 'not_found', before: null, after: null, eventId: null };
  }
  if (before.status !== 'failed') {
    return { type, id, outcome: 'refused', before: state(before), after: state(before), eventId: null };
  }
  return retryFailedRow(deps, type, before, { mode: 'single' });
}
