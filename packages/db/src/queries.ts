// Read-side helpers for the dispatcher, the monitor's reconciliation and the admin CLI. Times are
// PostgreSQL's (`now()`), never a client clock, and "older than" is given as a duration.
import type { EventKind } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import { snapshotColumns, stateColumn, toSnapshot, type RawSnapshot } from './internal/state-sql.js';
import {
  OPERATION_TABLES,
  OPERATION_TYPES,
  parseOperationId,
  parseOperationType,
  type OperationRef,
  type OperationStatus,
  type OperationType,
} from './operation-types.js';
import type { Database } from './schema.js';
import type { OperationSnapshot } from './snapshot.js';

type Db = Kysely<Database>;

const clampLimit = (n: number | undefined, dflt: number): number =>
  Math.max(1, Math.min(100_000, Math.floor(n ?? dflt)));
const interval = (ms: number) => sql`make_interval(secs => ${Math.max(0, ms) / 1000})`;

/**
 * The database's clock: `now()` in ms since the epoch, floored. A transaction started after this
 * resolves has `now()` at or after it, so every row a process claims from then on has `started_at`
 * at or after it (a worker publishes it as `claimsSince`). Rejects with a classified error.
 */
export function databaseNow(db: Db): Promise<number> {
  return classified(async () => {
    const { rows } = await sql<{
      ms: number;
    }>`SELECT floor(extract(epoch FROM now()) * 1000)::float8 AS ms`.execute(db);
    return Number(rows[0]!.ms);
  });
}

/** Pending rows whose next_attempt_at has passed, oldest first (served by a partial index). */
export function duePending(
  db: Db,
  type: OperationType,
  options: { limit?: number } = {},
): Promise<OperationRef[]> {
  const t = parseOperationType(type);
  return classified(async () => {
    const { rows } = await sql<{ id: string; attempt: number }>`
      SELECT id, ${stateColumn(t, 'attempt')} AS attempt FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${stateColumn(t, 'status')} = 'pending' AND ${stateColumn(t, 'next_attempt_at')} <= now()
      ORDER BY ${stateColumn(t, 'next_attempt_at')} LIMIT ${clampLimit(options.limit, 1000)}`.execute(db);
    return rows.map((r) => ({ type: t, id: String(r.id), attempt: r.attempt }));
  });
}

/**
 * in_progress rows with no sign of life (claim or progress) for `olderThanMs`, in id order: the
 * reconciliation input when Redis lost heartbeats (or a task died before its first beat). Page with
 * `afterId` (the last id of the previous page).
 */
export function staleInProgress(
  db: Db,
  type: OperationType,
  options: { olderThanMs: number; limit?: number; afterId?: string },
): Promise<OperationSnapshot[]> {
  const t = parseOperationType(type);
  const after = options.afterId === undefined ? undefined : parseOperationId(options.afterId);
  return classified(async () => {
    const { rows } = await sql<RawSnapshot>`
      SELECT ${snapshotColumns(t)} FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${stateColumn(t, 'status')} = 'in_progress' AND ${stateColumn(t, 'last_seen_at')} < now() - ${interval(options.olderThanMs)}
      ${after === undefined ? sql`` : sql`AND id > ${after}::bigint`}
      ORDER BY id LIMIT ${clampLimit(options.limit, 1000)}`.execute(db);
    return rows.map((r) => toSnapshot(t, r));
  });
}

/**
 * When the next in-progress row that still shows a sign of life will have shown none for
 * `olderThanMs`: milliseconds from now (database time), or undefined when no row is on its way.
 * Rows already that old are left out (staleInProgress lists them). One index probe.
 */
export function nextStaleInProgressInMs(
  db: Db,
  type: OperationType,
  options: { olderThanMs: number },
): Promise<number | undefined> {
  const t = parseOperationType(type);
  return classified(async () => {
    const seen = stateColumn(t, 'last_seen_at');
    const { rows } = await sql<{ in_ms: number | null }>`
      SELECT (extract(epoch FROM min(${seen}) + ${interval(options.olderThanMs)} - now()) * 1000)::float8 AS in_ms
      FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${stateColumn(t, 'status')} = 'in_progress' AND ${seen} >= now() - ${interval(options.olderThanMs)}`.execute(
      db,
    );
    const ms = rows[0]?.in_ms;
    return ms === null || ms === undefined ? undefined : Math.max(0, Math.ceil(ms));
  });
}

/** scheduled rows not claimed for `olderThanMs`: their job may have vanished (Redis flushed). */
export function staleScheduled(
  db: Db,
  type: OperationType,
  options: { olderThanMs: number; limit?: number },
): Promise<OperationSnapshot[]> {
  const t = parseOperationType(type);
  return classified(async () => {
    const { rows } = await sql<RawSnapshot>`
      SELECT ${snapshotColumns(t)} FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${stateColumn(t, 'status')} = 'scheduled' AND ${stateColumn(t, 'scheduled_at')} < now() - ${interval(options.olderThanMs)}
      ORDER BY ${stateColumn(t, 'scheduled_at')} LIMIT ${clampLimit(options.limit, 1000)}`.execute(db);
    return rows.map((r) => toSnapshot(t, r));
  });
}

export interface StatusCount {
  readonly type: OperationType;
  readonly status: OperationStatus;
  readonly count: number;
}

/** How many operations of each type are in each status (types and statuses with none are left out). */
export function countsByTypeAndStatus(db: Db): Promise<StatusCount[]> {
  return classified(async () => {
    const parts = OPERATION_TYPES.map((t) => {
      const status = stateColumn(t, 'status');
      return sql`SELECT ${t}::text AS type, ${status} AS status, count(*)::int AS count
        FROM ${sql.table(OPERATION_TABLES[t].table)} WHERE ${status} IS NOT NULL GROUP BY ${status}`;
    });
    const { rows } =
      await sql<StatusCount>`${sql.join(parts, sql` UNION ALL `)} ORDER BY type, status`.execute(db);
    return rows;
  });
}

/** Events that record something going wrong: a selection of the one declaration (@ccat/errors `EVENT_CATALOGUE`). */
export const FAILURE_EVENTS = [
  'retry_scheduled',
  'permanent_failure',
  'stall_recovered',
  'stall_exhausted',
  'lease_lost',
] as const satisfies readonly EventKind[];

export interface FailureGroup {
  readonly errorCode: string;
  readonly operationType: string;
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** The most recent few, newest first. */
  readonly examples: readonly {
    operationId: string;
    attempt: number;
    event: string;
    message: string | null;
    at: Date;
  }[];
}

/** Failure events over a time window, grouped by error code and operation type, most frequent first. */
export function failuresByErrorCode(
  db: Db,
  options: { sinceMs: number; type?: OperationType; code?: string; examples?: number },
): Promise<FailureGroup[]> {
  const type = options.type === undefined ? undefined : parseOperationType(options.type);
  const examples = Math.max(0, Math.min(20, Math.floor(options.examples ?? 3)));
  return classified(async () => {
    const where = [
      sql`created_at >= now() - ${interval(options.sinceMs)}`,
      sql`event IN (${sql.join([...FAILURE_EVENTS])})`,
    ];
    if (type !== undefined) where.push(sql`operation_type = ${type}`);
    if (options.code !== undefined) where.push(sql`error_code = ${options.code}`);
    const { rows } = await sql<{
      error_code: string;
      operation_type: string;
      count: number;
      first_at: Date;
      last_at: Date;
      examples:
        { operationId: string; attempt: number; event: string; message: string | null; at: string }[] | null;
    }>`
      WITH f AS (
        SELECT *, row_number() OVER (PARTITION BY coalesce(error_code, 'UNKNOWN'), operation_type ORDER BY created_at DESC, id DESC) AS rn
        FROM operation_events WHERE ${sql.join(where, sql` AND `)}
      )
      SELECT coalesce(error_code, 'UNKNOWN') AS error_code, operation_type, count(*)::int AS count,
        min(created_at) AS first_at, max(created_at) AS last_at,
        json_agg(json_build_object('operationId', operation_id::text, 'attempt', attempt, 'event', event,
          'message', left(message, 500), 'at', created_at) ORDER BY created_at DESC) FILTER (WHERE rn <= ${examples}) AS examples
      FROM f GROUP BY 1, 2 ORDER BY count DESC, error_code`.execute(db);
    return rows.map((r) => ({
      errorCode: r.error_code,
      operationType: r.operation_type,
      count: r.count,
      firstAt: r.first_at,
      lastAt: r.last_at,
      examples: (r.examples ?? []).map((x) => ({ ...x, at: new Date(x.at) })),
    }));
  });
}
