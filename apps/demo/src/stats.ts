// What the demo shows: operations by stage and status, decisions from the event log, the outbox.
import { countsByTypeAndStatus, OPERATION_TYPES, type Database, type OperationType } from '@ccat/db';
import { sql, type Kysely } from 'kysely';

export interface StageCounts {
  readonly pending: number;
  readonly running: number;
  readonly done: number;
  readonly failed: number;
}

export interface DemoStats {
  readonly stages: Readonly<Record<OperationType, StageCounts>>;
  readonly nonFinal: number;
  /** Packaged raw data waiting to be bundled (the pipeline is not done while there is any). */
  readonly unbundled: number;
  readonly events: Readonly<Record<string, number>>;
  readonly stallReasons: Readonly<Record<string, number>>;
  readonly notifications: Readonly<Record<string, number>>;
}

export async function readStats(db: Kysely<Database>): Promise<DemoStats> {
  const stages = Object.fromEntries(
    OPERATION_TYPES.map((t) => [t, { pending: 0, running: 0, done: 0, failed: 0 }]),
  ) as Record<OperationType, { pending: number; running: number; done: number; failed: number }>;
  let nonFinal = 0;
  for (const c of await countsByTypeAndStatus(db)) {
    const s = stages[c.type];
    switch (c.status) {
      case 'pending':
        s.pending += c.count;
        nonFinal += c.count;
        break;
      case 'scheduled':
      case 'in_progress':
        s.running += c.count;
        nonFinal += c.count;
        break;
      case 'completed':
        s.done += c.count;
        break;
      case 'failed':
        s.failed += c.count;
        break;
    }
  }
  const unbundled = Number(
    (
      await db
        .selectFrom('raw_data_packages')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('status', '=', 'completed')
        .where('data_transfer_package_id', 'is', null)
        .executeTakeFirstOrThrow()
    ).n,
  );
  const ev = await sql<{
    event: string;
    n: number;
  }>`SELECT event, count(*)::int AS n FROM operation_events GROUP BY event`.execute(db);
  const reasons = await sql<{ reason: string; n: number }>`
    SELECT coalesce(context->>'reason', '?') AS reason, count(*)::int AS n FROM operation_events
    WHERE event IN ('stall_recovered', 'stall_exhausted') GROUP BY 1`.execute(db);
  const notes = await sql<{
    status: string;
    n: number;
  }>`SELECT status, count(*)::int AS n FROM notifications GROUP BY status`.execute(db);
  return {
    stages,
    nonFinal,
    unbundled,
    events: Object.fromEntries(ev.rows.map((r) => [r.event, r.n])),
    stallReasons: Object.fromEntries(reasons.rows.map((r) => [r.reason, r.n])),
    notifications: Object.fromEntries(notes.rows.map((r) => [r.status, r.n])),
  };
}
