// Which queue an operation waits in (DESIGN §11: `${site}_${location}_${operationType}`, as in CCAT),
// and the waiting work per queue. Shared by the workers (what they listen on, where they dispatch)
// and the admin side (which waiting work no live worker serves).
import { sql, type Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import { stateColumn } from './internal/state-sql.js';
import {
  OPERATION_TABLES,
  OPERATION_TYPES,
  parseOperationType,
  type OperationStatus,
  type OperationType,
} from './operation-types.js';
import type { Database, LocationType } from './schema.js';

type Db = Kysely<Database>;

/** The column of each operation's table that names the location where it runs (its "home"). */
export const HOME_LOCATION_COLUMN: Readonly<Record<OperationType, string>> = {
  raw_data_package: 'source_location_id',
  data_transfer_package: 'buffer_location_id',
  data_transfer: 'origin_location_id',
  unpack: 'destination_location_id',
  long_term_archive_transfer: 'destination_location_id',
  deletion: 'location_id',
};

/** Which operation types run at a location of each kind. */
export const TYPES_AT_LOCATION: Readonly<Record<LocationType, readonly OperationType[]>> = {
  source: ['raw_data_package', 'deletion'],
  buffer: ['data_transfer_package', 'data_transfer', 'unpack', 'deletion'],
  long_term_archive: ['long_term_archive_transfer'],
  processing: [],
};

/**
 * The queue of an operation type at a site's location: `${site}_${location}_${type}` (DESIGN §11);
 * `alone` names its isolation queue (`…_alone`), whose jobs a worker runs with nothing else in its
 * process (rows with run_alone set, runbook "Innocent neighbours and poison operations"). A worker
 * that serves a queue serves its isolation queue too.
 */
export function queueName(site: string, location: string, type: OperationType, alone = false): string {
  return `${site}_${location}_${type}${alone ? '_alone' : ''}`;
}

/** Waiting work (pending or scheduled rows) of one operation type in one queue. */
export interface WaitingQueue {
  readonly operationType: OperationType;
  readonly queue: string;
  readonly pending: number;
  /** Pending rows whose next attempt is due now (the others wait out a backoff). */
  readonly pendingDue: number;
  readonly scheduled: number;
}

/**
 * Pending and scheduled rows per operation type and queue, every type in one statement (a scan of
 * the waiting rows joined to their home location and site; no row lock). Queues with none waiting
 * are left out. Throws the classified database error.
 */
export function waitingByQueue(db: Db): Promise<WaitingQueue[]> {
  return classified(async () => {
    const parts = OPERATION_TYPES.map((t) => {
      const status = stateColumn(t, 'status');
      return sql`SELECT ${t}::text AS operation_type, s.short_name || '_' || l.name || '_' || ${t}::text AS queue,
          count(*) FILTER (WHERE ${status} = 'pending')::int AS pending,
          count(*) FILTER (WHERE ${status} = 'pending' AND ${stateColumn(t, 'next_attempt_at')} <= now())::int AS pending_due,
          count(*) FILTER (WHERE ${status} = 'scheduled')::int AS scheduled
        FROM ${sql.table(OPERATION_TABLES[t].table)} o
        JOIN data_locations l ON l.id = o.${sql.ref(HOME_LOCATION_COLUMN[t])}
        JOIN sites s ON s.id = l.site_id
        WHERE ${status} IN ('pending', 'scheduled') GROUP BY 1, 2`;
    });
    const { rows } = await sql<{
      operation_type: OperationType;
      queue: string;
      pending: number;
      pending_due: number;
      scheduled: number;
    }>`${sql.join(parts, sql` UNION ALL `)} ORDER BY 1, 2`.execute(db);
    return rows.map((r) => ({
      operationType: r.operation_type,
      queue: r.queue,
      pending: r.pending,
      pendingDue: r.pending_due,
      scheduled: r.scheduled,
    }));
  });
}

/** One waiting row of a queue (see {@link waitingInQueues}). */
export interface WaitingRow {
  readonly operationType: OperationType;
  readonly id: string;
  readonly attempt: number;
  readonly status: Extract<OperationStatus, 'pending' | 'scheduled'>;
  readonly queue: string;
  readonly claimedBy: string | null;
  /**
   * Since when it waits: its scheduling (scheduled); for pending, when it became pending (the row's
   * last update, or its due time when that is earlier) — a row waiting out its backoff has waited
   * since its retry was scheduled, not since its next attempt falls due.
   */
  readonly since: Date;
  /** ms until its next attempt is due (pending and not yet due), else 0. Database time. */
  readonly dueInMs: number;
}

/**
 * Pending and scheduled rows of `type` in the given queues, longest waiting first, at most `limit`
 * (1 to 1000). Throws the classified database error.
 */
export function waitingInQueues(
  db: Db,
  type: OperationType,
  queues: readonly string[],
  options: { limit: number },
): Promise<WaitingRow[]> {
  const t = parseOperationType(type);
  if (queues.length === 0) return Promise.resolve([]);
  const limit = Math.max(1, Math.min(1000, Math.floor(options.limit)));
  return classified(async () => {
    const status = stateColumn(t, 'status');
    const { rows } = await sql<{
      id: string;
      attempt: number;
      status: 'pending' | 'scheduled';
      queue: string;
      claimed_by: string | null;
      since: Date;
      due_in_ms: number;
    }>`
      SELECT * FROM (
        SELECT o.id::text AS id, ${stateColumn(t, 'attempt')} AS attempt, ${status} AS status,
          s.short_name || '_' || l.name || '_' || ${t}::text AS queue, ${stateColumn(t, 'claimed_by')} AS claimed_by,
          CASE WHEN ${status} = 'scheduled' THEN coalesce(${stateColumn(t, 'scheduled_at')}, ${stateColumn(t, 'next_attempt_at')})
            ELSE least(o.updated_at, ${stateColumn(t, 'next_attempt_at')}) END AS since,
          greatest(0, extract(epoch FROM ${stateColumn(t, 'next_attempt_at')} - now()) * 1000)::float8 AS due_in_ms
        FROM ${sql.table(OPERATION_TABLES[t].table)} o
        JOIN data_locations l ON l.id = o.${sql.ref(HOME_LOCATION_COLUMN[t])}
        JOIN sites s ON s.id = l.site_id
        WHERE ${status} IN ('pending', 'scheduled')
      ) w WHERE queue = ANY(${[...queues]}::text[]) ORDER BY since, id::bigint LIMIT ${limit}`.execute(db);
    return rows.map((r) => ({
      operationType: t,
      id: r.id,
      attempt: r.attempt,
      status: r.status,
      queue: r.queue,
      claimedBy: r.claimed_by,
      since: r.since,
      dueInMs: r.status === 'pending' ? Math.ceil(r.due_in_ms) : 0,
    }));
  });
}
