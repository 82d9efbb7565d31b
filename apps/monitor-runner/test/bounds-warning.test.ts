// The liveness_bounds_mismatch WARNING survives a failed insert (adversary of 942b946): the worker
// was marked reported before the notification was queued, so one PostgreSQL error at that moment
// (here a trigger refusing the first insert) lost the WARNING for the monitor's life.
import { setTimeout as delay } from 'node:timers/promises';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import { sql } from 'kysely';
import { expect } from 'vitest';
import { monitorTest, type MonitorContext } from './support/monitor-fixture.js';

const LIVENESS_MS = 3000;
const it = monitorTest('mon_bounds_warning');

async function run(
  { database, redis, prefix, monitor }: Pick<MonitorContext, 'database' | 'redis' | 'prefix' | 'monitor'>,
  blip: boolean,
): Promise<number> {
  const keyPrefix = `${prefix}${blip ? 'w1' : 'ctl'}:`;
  const worker = blip ? 'slow-worker' : 'slow-worker-ctl';
  const m = monitor(
    {
      keyPrefix,
      monitor: {
        livenessTimeoutMs: LIVENESS_MS,
        heartbeatIntervalMs: 1000,
        loopIntervalMs: 1000,
        progressStalls: false,
      },
    },
    { monitorId: 'warn-monitor' },
  );
  const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 1000, timeoutMs: 2 * LIVENESS_MS });
  const count = async () =>
    (
      await database.db
        .selectFrom('notifications')
        .select('id')
        .where('dedup_key', '=', `liveness_bounds_mismatch:${worker}`)
        .execute()
    ).length;
  try {
    if (blip) {
      await sql`CREATE FUNCTION refuse_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'notifications unavailable'; END $$`.execute(
        database.db,
      );
      await sql`CREATE TRIGGER refuse_insert BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION refuse_insert()`.execute(
        database.db,
      );
    }
    await emitter.start();
    await emitter.track('unpack:902:0', { attributes: { workerId: worker } });
    await m.runPass(); // the bounds check runs; its insert fails
    if (blip) await sql`DROP TRIGGER refuse_insert ON notifications`.execute(database.db);
    // PostgreSQL healthy again; bounds checks every loop interval (1 s) for 3.5 s.
    const until = Date.now() + 3500;
    while (Date.now() < until) {
      await m.runPass();
      await delay(200);
    }
    const n = await count();
    console.log(`[W1] blip ${blip}: liveness_bounds_mismatch notifications: ${n}`);
    return n;
  } finally {
    await emitter.close();
    await m.close();
  }
}

it('W1 control: without the blip, one WARNING', async ({ setup }) => {
  expect(await run(setup, false)).toBe(1);
}, 30_000);

it('W1: a liveness_bounds_mismatch WARNING whose first insert failed is queued once PostgreSQL is back', async ({
  setup,
}) => {
  expect(await run(setup, true)).toBe(1);
}, 30_000);
