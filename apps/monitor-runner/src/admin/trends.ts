// Per hour or per day: recovery success rate, retries scheduled, stalls detected, permanent
// failures, notifications sent and digested. The dashboard's Trends page charts these. The success
// rate per bucket follows report.ts's definition (DEFINITIONS.recoverySuccessRate), with the bucket
// as the window: of the operations with a trouble event in the bucket that have settled since,
// those completed.
import { OPERATION_TABLES, OPERATION_TYPES, type Database } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { TROUBLE_EVENTS } from './report-queries.js';

export type TrendUnit = 'hour' | 'day';

/** One bucket; counts are events (or outbox rows) whose time falls in [at, at + unit). */
export interface TrendBucket {
  /** Start of the bucket (database time, truncated to the unit in UTC). */
  readonly at: Date;
  /** Null when no operation with trouble in the bucket has settled (nothing to divide). */
  readonly recoverySuccessRate: number | null;
  /** Operations counted by the rate: settled (completed or failed) after trouble in the bucket. */
  readonly settled: number;
  readonly retriesScheduled: number;
  /** stall_recovered + stall_exhausted events. */
  readonly stallsDetected: number;
  /** permanent_failure + stall_exhausted events (both end in failed). */
  readonly permanentFailures: number;
  /** Outbox rows sent (by sent_at). */
  readonly notificationsSent: number;
  /** Outbox rows folded into a digest (by created_at). */
  readonly notificationsDigested: number;
}

export interface Trends {
  readonly unit: TrendUnit;
  /** Oldest first, every bucket present (zeros included). */
  readonly buckets: readonly TrendBucket[];
}

/** Buckets shown: two days by the hour, a month by the day. */
const TREND_BUCKETS: Readonly<Record<TrendUnit, number>> = { hour: 48, day: 30 };

/** Every operation's type, id and status, across the tables (unpack has its own columns). */
function allOperations() {
  return sql.join(
    OPERATION_TYPES.map((t) => {
      const { table, prefix } = OPERATION_TABLES[t];
      const status = sql.ref(`${prefix}status`);
      return sql`SELECT ${t}::text AS type, id, ${status} AS status FROM ${sql.table(table)} WHERE ${status} IS NOT NULL`;
    }),
    sql` UNION ALL `,
  );
}

/** The trends over the last TREND_BUCKETS[unit] buckets (database clock). Throws classified errors. */
export async function readTrends(db: Kysely<Database>, unit: TrendUnit): Promise<Trends> {
  const n = TREND_BUCKETS[unit];
  const step = sql`make_interval(${sql.raw(unit === 'hour' ? 'hours' : 'days')} => 1)`;
  const trunc = (col: ReturnType<typeof sql.ref>) => sql`date_trunc(${unit}, ${col}, 'UTC')`;
  const start = sql`date_trunc(${unit}, now(), 'UTC') - ${step} * ${n - 1}`;
  const trouble = sql.join(TROUBLE_EVENTS.map((e) => sql`${e}`));
  try {
    const { rows } = await sql<{
      at: Date;
      settled: number;
      completed: number;
      retries: number;
      stalls: number;
      permanent: number;
      sent: number;
      digested: number;
    }>`
      WITH buckets AS (SELECT generate_series(${start}, date_trunc(${unit}, now(), 'UTC'), ${step}) AS at),
      ev AS (
        SELECT ${trunc(sql.ref('e.created_at'))} AS at, e.event, e.operation_type, e.operation_id, o.status
        FROM operation_events e LEFT JOIN (${allOperations()}) o ON o.type = e.operation_type AND o.id = e.operation_id
        WHERE e.created_at >= ${start}),
      ev_agg AS (
        SELECT at,
          count(DISTINCT (operation_type, operation_id)) FILTER (WHERE event IN (${trouble}) AND status IN ('completed', 'failed'))::int AS settled,
          count(DISTINCT (operation_type, operation_id)) FILTER (WHERE event IN (${trouble}) AND status = 'completed')::int AS completed,
          count(*) FILTER (WHERE event = 'retry_scheduled')::int AS retries,
          count(*) FILTER (WHERE event IN ('stall_recovered', 'stall_exhausted'))::int AS stalls,
          count(*) FILTER (WHERE event IN ('permanent_failure', 'stall_exhausted'))::int AS permanent
        FROM ev GROUP BY at),
      sent AS (SELECT ${trunc(sql.ref('sent_at'))} AS at, count(*)::int AS n FROM notifications
        WHERE status = 'sent' AND sent_at >= ${start} GROUP BY 1),
      digested AS (SELECT ${trunc(sql.ref('created_at'))} AS at, count(*)::int AS n FROM notifications
        WHERE status = 'digested' AND created_at >= ${start} GROUP BY 1)
      SELECT b.at, coalesce(e.settled, 0) AS settled, coalesce(e.completed, 0) AS completed,
        coalesce(e.retries, 0) AS retries, coalesce(e.stalls, 0) AS stalls, coalesce(e.permanent, 0) AS permanent,
        coalesce(s.n, 0) AS sent, coalesce(d.n, 0) AS digested
      FROM buckets b LEFT JOIN ev_agg e ON e.at = b.at LEFT JOIN sent s ON s.at = b.at
        LEFT JOIN digested d ON d.at = b.at
      ORDER BY b.at`.execute(db);
    return {
      unit,
      buckets: rows.map((r) => ({
        at: r.at,
        recoverySuccessRate: r.settled === 0 ? null : r.completed / r.settled,
        settled: r.settled,
        retriesScheduled: r.retries,
        stallsDetected: r.stalls,
        permanentFailures: r.permanent,
        notificationsSent: r.sent,
        notificationsDigested: r.digested,
      })),
    };
  } catch (e) {
    throw classifyError(e);
  }
}
