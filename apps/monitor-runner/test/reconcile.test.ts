// The monitor's reconciliation in one process, pass by pass: rows with no heartbeat and no sign of
// life in the database for their timeout, with the heartbeats and rows set up directly.
import { readOperation, type CcatDatabase } from '@ccat/db';
import { migratedDatabase, seedLocations, seedOperation, type TestLocations } from '@ccat/db/testing';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import {
  connectTestRedis,
  createTestSchema,
  deleteKeysWithPrefix,
  uniquePrefix,
  type TestSchema,
} from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMonitorMetrics, Monitor, monitorConfigSchema } from '../src/index.js';

const logger = pino({ level: 'silent' });
const TIMEOUT_MS = 60_000;
let schema: TestSchema;
let database: CcatDatabase;
let locations: TestLocations;
let redis: Redis;
const prefix = uniquePrefix('mon_reconcile');

beforeAll(async () => {
  schema = await createTestSchema('mon_reconcile');
  database = await migratedDatabase({ url: schema.url, schema: schema.schema });
  locations = await seedLocations(database.db);
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await database?.close();
  await schema?.drop();
});

function monitor(keyPrefix: string, batchSize: number): Monitor {
  const config = monitorConfigSchema.parse({
    keyPrefix,
    monitor: { heartbeatTimeoutMs: TIMEOUT_MS, loopIntervalMs: 300_000, batchSize, progressStalls: false },
  });
  return new Monitor({
    db: database.db,
    redis,
    logger,
    config,
    monitorId: 'test-monitor',
    recovery: { db: database.db, registry: createHandlerRegistry(), policy: config.recovery, logger },
    metrics: createMonitorMetrics(),
  });
}

describe('reconciliation', () => {
  it('finds a dead task behind more stale-but-beating tasks than one batch', async () => {
    const keyPrefix = `${prefix}a:`;
    // Seven tasks without a sign of life in the database for ten minutes; the first six still
    // beat (long operations that write no progress), the last one's process is gone.
    const ids: string[] = [];
    for (let i = 0; i < 7; i++)
      ids.push(
        await seedOperation(database.db, locations, 'deletion', { status: 'in_progress', lastSeenAgoS: 600 }),
      );
    const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 1000, timeoutMs: TIMEOUT_MS });
    try {
      for (const id of ids.slice(0, 6)) await emitter.track(`deletion:${id}:0`);
      const report = await monitor(keyPrefix, 3).runPass();
      expect(report).toMatchObject({ ran: true, reconciled: 1 });
      expect(await readOperation(database.db, 'deletion', ids[6]!)).toMatchObject({
        status: 'pending',
        attempt: 1,
      });
      for (const id of ids.slice(0, 6))
        expect(await readOperation(database.db, 'deletion', id)).toMatchObject({ status: 'in_progress' });
    } finally {
      await emitter.close();
    }
  });

  it("wakes when the next in-progress row's sign of life reaches the timeout, and waits out another replica's lease", async () => {
    const keyPrefix = `${prefix}b:`;
    // 58 s into a 60 s timeout, and no heartbeat: due in about 2 s, not at the 300 s loop interval.
    const id = await seedOperation(database.db, locations, 'unpack', {
      status: 'in_progress',
      lastSeenAgoS: 58,
    });
    const m = monitor(keyPrefix, 500);
    const first = await m.runPass();
    expect(first.ran).toBe(true);
    expect(first.sleepMs).toBeGreaterThan(1000);
    expect(first.sleepMs).toBeLessThanOrEqual(2100);
    expect(await readOperation(database.db, 'unpack', id)).toMatchObject({ status: 'in_progress' });
    // Another replica holds the lease for 3 s: this one sleeps until it ends, not 20 ms at a time.
    await redis.set(`${keyPrefix}monitor:lease`, 'other', 'PX', 3000);
    const busy = await m.runPass();
    expect(busy.ran).toBe(false);
    expect(busy.sleepMs).toBeGreaterThan(2000);
    await redis.del(`${keyPrefix}monitor:lease`);
    await new Promise((r) => setTimeout(r, first.sleepMs));
    expect(await m.runPass()).toMatchObject({ ran: true, reconciled: 1 });
    expect(await readOperation(database.db, 'unpack', id)).toMatchObject({ status: 'pending', attempt: 1 });
  });
});
