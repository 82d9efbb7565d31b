// The reads behind `report`, in one read-only REPEATABLE READ transaction: every figure sees the
// same snapshot and the same now(), so the window is one interval for all of them.
import {
  OPERATION_TABLES,
  OPERATION_TYPES,
  type Database,
  type NotificationStatus,
  type OperationType,
} from '@ccat/db';
import { classifyError, type EventKind } from '@ccat/errors';
import { sql, type Kysely, type RawBuilder } from 'kysely';

/** Events that mean "this operation went wrong": a failure or a stall, recovered or not. */
export const TROUBLE_EVENTS = [
  'retry_scheduled',
  'permanent_failure',
  'stall_recovered',
  'stall_exhausted',
] as const satisfies readonly EventKind[];
/** Events that mean "this operation runs again automatically". */
export const RETRY_EVENTS = ['retry_scheduled', 'stall_recovered'] as const satisfies readonly EventKind[];

export const NOTIFICATION_STATUSES = [
  'sent',
  'failed',
  'digested',
  'pending',
] as const satisfies readonly NotificationStatus[];

export interface TypeFigures {
  readonly type: OperationType;
  /** Operations of this type with at least one TROUBLE_EVENTS event in the window. */
  readonly affected: number;
  /** …of which now completed, failed, pending/scheduled/in_progress, or no longer present. */
  readonly completed: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly missing: number;
  /** RETRY_EVENTS events in the window of operations now completed. */
  readonly retriesOfCompleted: number;
  /** Operations now completed whose finished_at is in the window. */
  readonly completedInWindow: number;
}

export interface ReportData {
  readonly windowStart: Date;
  readonly windowEnd: Date;
  readonly byType: readonly TypeFigures[];
  /** Every operation_events kind recorded in the window, with its count. */
  readonly events: Readonly<Record<string, number>>;
  /** Outbox rows created in the window, by status. */
  readonly notifications: Readonly<Record<(typeof NOTIFICATION_STATUSES)[number], number>>;
  /**
   * The most recent failed notifications of the window (at most 10). Not their last_error: delivery
   * errors come from mail servers and chat APIs and may quote what we must not print.
   */
  readonly failedNotifications: readonly { readonly id: string; readonly eventKind: string }[];
}

const list = (items: readonly string[]) => sql.join(items.map((i) => sql`${i}`));

/** Each type's current status beside its events: one LEFT JOIN per type, over the `ops` CTE. */
function currentStatus(): RawBuilder<unknown> {
  return sql.join(
    OPERATION_TYPES.map((t) => {
      const { table, prefix } = OPERATION_TABLES[t];
      return sql`SELECT o.operation_type, o.retries, ${sql.ref(`x.${prefix}status`)} AS status
        FROM ops o LEFT JOIN ${sql.table(table)} AS x ON x.id = o.operation_id WHERE o.operation_type = ${t}`;
    }),
    sql` UNION ALL `,
  );
}

function completedInWindow(start: RawBuilder<unknown>): RawBuilder<unknown> {
  return sql.join(
    OPERATION_TYPES.map((t) => {
      const { table, prefix } = OPERATION_TABLES[t];
      return sql`SELECT ${t}::text AS type, count(*)::int AS n FROM ${sql.table(table)}
        WHERE ${sql.ref(`${prefix}status`)} = 'completed' AND ${sql.ref(`${prefix}finished_at`)} >= ${start}`;
    }),
    sql` UNION ALL `,
  );
}

/** Reads every figure of the report for the window [now − sinceMs, now] (database clock). */
export async function readReport(db: Kysely<Database>, sinceMs: number): Promise<ReportData> {
  const start = sql`now() - make_interval(secs => ${sinceMs / 1000})`;
  try {
    return await db
      .transaction()
      .setIsolationLevel('repeatable read')
      .setAccessMode('read only')
      .execute(async (trx) => {
        const window = (
          await sql<{ start: Date; end: Date }>`SELECT ${start} AS start, now() AS end`.execute(trx)
        ).rows[0]!;
        const troubled = await sql<Omit<TypeFigures, 'completedInWindow' | 'type'> & { type: string }>`
          WITH ops AS (
            SELECT operation_type, operation_id,
              (count(*) FILTER (WHERE event IN (${list(RETRY_EVENTS)})))::int AS retries
            FROM operation_events WHERE created_at >= ${start} AND event IN (${list(TROUBLE_EVENTS)})
            GROUP BY 1, 2
          ), cur AS (${currentStatus()})
          SELECT operation_type AS type, count(*)::int AS affected,
            (count(*) FILTER (WHERE status = 'completed'))::int AS completed,
            (count(*) FILTER (WHERE status = 'failed'))::int AS failed,
            (count(*) FILTER (WHERE status IN ('pending', 'scheduled', 'in_progress')))::int AS "inFlight",
            (count(*) FILTER (WHERE status IS NULL))::int AS missing,
            (coalesce(sum(retries) FILTER (WHERE status = 'completed'), 0))::int AS "retriesOfCompleted"
          FROM cur GROUP BY 1`.execute(trx);
        const completed = await sql<{ type: string; n: number }>`${completedInWindow(start)}`.execute(trx);
        const events = await sql<{ event: string; n: number }>`
          SELECT event, count(*)::int AS n FROM operation_events WHERE created_at >= ${start}
          GROUP BY 1 ORDER BY 1`.execute(trx);
        const notes = await sql<{ status: string; n: number }>`
          SELECT status, count(*)::int AS n FROM notifications WHERE created_at >= ${start} GROUP BY 1`.execute(
          trx,
        );
        const failedNotes = await sql<{ id: string; event_kind: string }>`
          SELECT id, event_kind FROM notifications
          WHERE created_at >= ${start} AND status = 'failed' ORDER BY id DESC LIMIT 10`.execute(trx);

        const byTroubled = new Map(troubled.rows.map((r) => [r.type, r]));
        const byCompleted = new Map(completed.rows.map((r) => [r.type, r.n]));
        const count = (status: string) => notes.rows.find((r) => r.status === status)?.n ?? 0;
        return {
          windowStart: window.start,
          windowEnd: window.end,
          byType: OPERATION_TYPES.map((type): TypeFigures => {
            const t = byTroubled.get(type);
            return {
              type,
              affected: t?.affected ?? 0,
              completed: t?.completed ?? 0,
              failed: t?.failed ?? 0,
              inFlight: t?.inFlight ?? 0,
              missing: t?.missing ?? 0,
              retriesOfCompleted: t?.retriesOfCompleted ?? 0,
              completedInWindow: byCompleted.get(type) ?? 0,
            };
          }),
          events: Object.fromEntries(events.rows.map((r) => [r.event, r.n])),
          notifications: {
            sent: count('sent'),
            failed: count('failed'),
            digested: count('digested'),
            pending: count('pending'),
          },
          failedNotifications: failedNotes.rows.map((r) => ({
            id: String(r.id),
            eventKind: r.event_kind,
          })),
        };
      });
  } catch (e) {
    throw classifyError(e);
  }
}
