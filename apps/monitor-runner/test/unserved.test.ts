// The monitor's watch for waiting work no live worker serves: the gauge by operation type and one
// work_unserved WARNING per queue per dedup window, against the real PostgreSQL and Redis, with the
// workers' health records written by the heartbeat package as the workers write them.
import { waitingByQueue, type CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  seedLocations,
  seedOperation,
  type TestDatabase,
  type TestLocations,
} from '@ccat/db/testing';
import { ServiceHealthReporter } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix, waitFor } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMonitorMetrics, Monitor, monitorConfigSchema, type MonitorMetrics } from '../src/index.js';

const logger = pino({ level: 'silent' });
const LIVENESS_MS = 1000;
let schema: TestDatabase;
let database: CcatDatabase;
let locations: TestLocations;
let redis: Redis;
const prefix = uniquePrefix('mon_unserved');

beforeAll(async () => {
  schema = await createTestDatabase('mon_unserved');
  database = schema.database;
  locations = await seedLocations(database.db);
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await schema?.close();
});

function monitor(metrics: MonitorMetrics, loopIntervalMs = 100): Monitor {
  const config = monitorConfigSchema.parse({
    keyPrefix: prefix,
    monitor: {
      livenessTimeoutMs: LIVENESS_MS,
      heartbeatIntervalMs: 400,
      loopIntervalMs,
      progressStalls: false,
    },
  });
  return new Monitor({
    db: database.db,
    redis,
    logger,
    config,
    monitorId: 'test-monitor',
    recovery: { db: database.db, registry: createHandlerRegistry(), policy: config.recovery, logger },
    metrics,
  });
}

async function gauge(metrics: MonitorMetrics): Promise<Record<string, number>> {
  const m = await metrics.operationsUnserved.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels['operation_type']), v.value]));
}

async function unservedAlerts(): Promise<{ dedup_key: string; level: string; subject: string }[]> {
  const { rows } = await sql<{ dedup_key: string; level: string; subject: string }>`
    SELECT dedup_key, level, subject FROM notifications WHERE event_kind = 'work_unserved' ORDER BY id`.execute(
    database.db,
  );
  return rows;
}

describe('unserved work', () => {
  it('starts the gauge at 0 for every operation type', async () => {
    const text = await createMonitorMetrics().registry.metrics();
    for (const t of ['raw_data_package', 'unpack', 'deletion', 'long_term_archive_transfer'])
      expect(text).toMatch(
        new RegExp(`^ccat_operations_unserved\\{[^}]*operation_type="${t}"[^}]*\\} 0$`, 'm'),
      );
  });

  it('counts waiting rows per type whose queue no live worker serves, and alerts once per queue and window', async () => {
    await seedOperation(database.db, locations, 'deletion');
    await seedOperation(database.db, locations, 'deletion', { status: 'scheduled', scheduledAgoS: 5 });
    // Not due for an hour: still waiting, still nothing to serve it.
    await seedOperation(database.db, locations, 'unpack', { nextAttemptInS: 3600 });
    const queues = await waitingByQueue(database.db);
    const queueOf = (type: string) => queues.find((q) => q.operationType === type)!.queue;
    // A live worker serving the deletion queue (and, like every worker, listing its queues).
    const served = [queueOf('deletion'), queueOf('raw_data_package')];
    const worker = new ServiceHealthReporter({
      redis,
      keyPrefix: prefix,
      serviceType: 'worker',
      serviceName: 'w-1',
      ttlMs: 60_000,
      refreshMs: 30_000,
      queues: served,
    });
    await worker.start();
    const metrics = createMonitorMetrics();
    const m = monitor(metrics);
    try {
      await m.runPass();
      expect(await gauge(metrics)).toMatchObject({ unpack: 1, deletion: 0, raw_data_package: 0 });
      // Unserved for less than the liveness bound: no alert yet (a restarting worker is no news).
      expect(await unservedAlerts()).toEqual([]);
      await waitFor(async () => (await m.runPass(), (await unservedAlerts()).length > 0), {
        timeoutMs: 5 * LIVENESS_MS,
        message: 'a work_unserved notification',
      });
      // Many more checks inside the dedup window: still one notification for that queue.
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        await m.runPass();
        await new Promise((r) => setTimeout(r, 100));
      }
      const alerts = await unservedAlerts();
      // One per queue: the unpack row's, and its carrier data transfer package's (pending at the buffer).
      expect(alerts.map((a) => a.dedup_key).sort()).toEqual(
        [`work_unserved:${queueOf('data_transfer_package')}`, `work_unserved:${queueOf('unpack')}`].sort(),
      );
      expect(alerts.find((a) => a.dedup_key === `work_unserved:${queueOf('unpack')}`)).toEqual({
        dedup_key: `work_unserved:${queueOf('unpack')}`,
        level: 'WARNING',
        subject: `1 unpack operation waiting: no live worker serves queue ${queueOf('unpack')}`,
      });
      // The worker stops: its deletion queue is unserved from the next check on.
      await worker.close();
      await waitFor(async () => (await m.runPass(), (await gauge(metrics))['deletion'] === 2), {
        timeoutMs: 5 * LIVENESS_MS,
        message: 'deletion unserved once its worker stopped',
      });
      await waitFor(
        async () => (
          await m.runPass(),
          (await unservedAlerts()).some((a) => a.dedup_key === `work_unserved:${queueOf('deletion')}`)
        ),
        { timeoutMs: 5 * LIVENESS_MS, message: 'a work_unserved notification for the deletion queue' },
      );
    } finally {
      await worker.close();
      await m.close();
    }
  });

  it('alerts once the liveness bound has passed, not a whole loop interval (5 min by default) later', async () => {
    await sql`DELETE FROM notifications`.execute(database.db);
    const m = monitor(createMonitorMetrics(), 300_000);
    try {
      await m.runPass();
      expect(await unservedAlerts()).toEqual([]);
      await new Promise((r) => setTimeout(r, LIVENESS_MS + 100));
      await m.runPass();
      expect((await unservedAlerts()).length).toBeGreaterThan(0);
    } finally {
      await m.close();
    }
  });
});
