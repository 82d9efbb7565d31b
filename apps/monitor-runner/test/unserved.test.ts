// The monitor's watch for waiting work no live worker serves: the gauge by operation type and one
// work_unserved WARNING per queue per dedup window, against the real PostgreSQL and Redis, with the
// workers' health records written by the heartbeat package as the workers write them.
import { waitingByQueue, type CcatDatabase } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { ServiceHealthReporter } from '@ccat/heartbeat';
import { waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { describe, expect } from 'vitest';
import { createMonitorMetrics, type MonitorConfigInput, type MonitorMetrics } from '../src/index.js';
import { monitorTest } from './support/monitor-fixture.js';

const LIVENESS_MS = 1000;
const it = monitorTest('mon_unserved');

function config(keyPrefix: string, loopIntervalMs = 100): MonitorConfigInput {
  return {
    keyPrefix,
    monitor: {
      livenessTimeoutMs: LIVENESS_MS,
      heartbeatIntervalMs: 400,
      loopIntervalMs,
      progressStalls: false,
    },
  };
}

async function gauge(metrics: MonitorMetrics): Promise<Record<string, number>> {
  const m = await metrics.operationsUnserved.get();
  return Object.fromEntries(m.values.map((v) => [String(v.labels['operation_type']), v.value]));
}

async function unservedAlerts(
  database: CcatDatabase,
): Promise<{ dedup_key: string; level: string; subject: string }[]> {
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

  it('counts waiting rows per type whose queue no live worker serves, and alerts once per queue and window', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
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
    const m = monitor(config(prefix), { metrics });
    try {
      await m.runPass();
      expect(await gauge(metrics)).toMatchObject({ unpack: 1, deletion: 0, raw_data_package: 0 });
      // Unserved for less than the liveness bound: no alert yet (a restarting worker is no news).
      expect(await unservedAlerts(database)).toEqual([]);
      await waitFor(async () => (await m.runPass(), (await unservedAlerts(database)).length > 0), {
        timeoutMs: 5 * LIVENESS_MS,
        message: 'a work_unserved notification',
      });
      // Many more checks inside the dedup window: still one notification for that queue.
      const until = Date.now() + 1000;
      while (Date.now() < until) {
        await m.runPass();
        await new Promise((r) => setTimeout(r, 100));
      }
      const alerts = await unservedAlerts(database);
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
          (await unservedAlerts(database)).some((a) => a.dedup_key === `work_unserved:${queueOf('deletion')}`)
        ),
        { timeoutMs: 5 * LIVENESS_MS, message: 'a work_unserved notification for the deletion queue' },
      );
    } finally {
      await worker.close();
      await m.close();
    }
  });

  it('alerts once the liveness bound has passed, not a whole loop interval (5 min by default) later', async ({
    setup: { prefix, database, monitor },
  }) => {
    await sql`DELETE FROM notifications`.execute(database.db);
    const m = monitor(config(prefix, 300_000));
    try {
      await m.runPass();
      expect(await unservedAlerts(database)).toEqual([]);
      await new Promise((r) => setTimeout(r, LIVENESS_MS + 100));
      await m.runPass();
      expect((await unservedAlerts(database)).length).toBeGreaterThan(0);
    } finally {
      await m.close();
    }
  });
});
