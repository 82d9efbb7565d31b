// SIGTERM while a monitor pass is blocked on PostgreSQL (issue 11 item 5), with a real monitor
// process (dist/main.js): the test holds a lock the pass's recovery waits for. Not a row lock: the
// monitor skips rows another transaction holds (SKIP LOCKED) and recovers them on a later pass; a
// SHARE lock on operation_events blocks the recovery's event insert, which is one statement with its
// update, so the pass waits inside its transaction.
import { setOperationState } from '@ccat/db/testing';
import { heartbeatKeys } from '@ccat/heartbeat';
import { waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createE2E, type E2E } from './support/system.js';

const SHUTDOWN_MS = 3000;
let e: E2E | undefined;
let release: (() => void) | undefined;
afterEach(async () => {
  release?.();
  await e?.close();
  e = undefined;
});

/** A dead task's row and its expired heartbeat member; the test blocks writes of event rows. */
async function blockedPass(label: string, monitorConfig: object = {}) {
  e = await createE2E(label);
  const [id] = await e.seed(1);
  await setOperationState(e.database.db, 'raw_data_package', id!, {
    status: 'in_progress',
    lastSeenAgoS: 0,
    claimedBy: 'gone',
  });
  const member = `raw_data_package:${id!}:0`;
  const keys = heartbeatKeys({ keyPrefix: e.prefix });
  const [s] = await e.redis.time();
  const past = Number(s) * 1000 - 5000;
  await e.redis
    .multi()
    .zadd(keys.deadlines, past, member)
    .hset(keys.details, member, JSON.stringify({ registeredAt: past, emitterId: 'gone:1', timeoutMs: 1500 }))
    .exec();
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const released = new Promise<void>((r) => (release = r));
  const holder = e.database.db.transaction().execute(async (trx) => {
    await sql`LOCK TABLE operation_events IN SHARE MODE`.execute(trx);
    locked();
    await released;
  });
  await isLocked;
  const monitor = await e.monitor('monitor-1', { shutdown: { timeoutMs: SHUTDOWN_MS }, ...monitorConfig });
  // The pass's recovery now waits for the lock: seen by PostgreSQL, not guessed.
  const db = e.database.db;
  await waitFor(
    async () => {
      const { rows } = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE application_name = 'ccat-monitor monitor-1' AND wait_event_type = 'Lock'`.execute(db);
      return rows[0]!.n > 0;
    },
    { timeoutMs: 20_000, message: 'the monitor pass waits for the lock on operation_events' },
  );
  return { id: id!, monitor, holder };
}

describe('SIGTERM during a monitor pass', () => {
  it('the pass returns soon after SIGTERM: the loop does not sleep its interval first; exit 0', async () => {
    // The shipped timings: after a pass the loop would sleep up to the 12 s liveness bound.
    const { id, monitor, holder } = await blockedPass('mon_term_returns', {
      monitor: { livenessTimeoutMs: 12_000, heartbeatIntervalMs: 4_000, loopIntervalMs: 300_000 },
    });
    monitor.signal('SIGTERM');
    // The pass is unblocked a moment later and finishes its recovery; then the loop must stop.
    await monitor.waitForLine(
      (l) => l['msg'] === 'signal received: finishing the current pass (send it again to exit at once)',
    );
    release!();
    await holder;
    expect(await monitor.exited).toBe(0);
    expect(monitor.lines.some((l) => l['msg'] === 'shutdown took too long; exiting')).toBe(false);
    const row = await e!.database.db
      .selectFrom('raw_data_packages')
      .select(['status', 'attempt'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'pending', attempt: 1 });
  }, 60_000);

  it('a pass still blocked past the bound has its statements cancelled and is abandoned cleanly: exit 0', async () => {
    const { id, monitor } = await blockedPass('mon_term_blocked');
    monitor.signal('SIGTERM');
    // The lock is never released while the monitor runs.
    expect(await monitor.exited).toBe(0);
    expect(monitor.lines.some((l) => l['msg'] === 'cancelled the blocked pass statements')).toBe(true);
    expect(monitor.lines.some((l) => l['msg'] === 'shutdown took too long; exiting')).toBe(false);
    // Nothing half-done: the row is still the dead attempt's, for the next monitor to recover.
    const row = await e!.database.db
      .selectFrom('raw_data_packages')
      .select(['status', 'attempt'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toEqual({ status: 'in_progress', attempt: 0 });
  }, 60_000);
});
