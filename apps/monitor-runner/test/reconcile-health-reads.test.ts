// Reconciliation while the workers' health records cannot be read (adversary of 883d6bd): the
// expiry times read before are dropped, so a row waiting on one is not looked at in every pass.
import { type CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  seedLocations,
  seedOperation,
  type TestDatabase,
  type TestLocations,
} from '@ccat/db/testing';
import { heartbeatKeys, ServiceHealthReporter } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMonitorMetrics, Monitor, monitorConfigSchema } from '../src/index.js';

const logger = pino({ level: 'silent' });
let schema: TestDatabase;
let database: CcatDatabase;
let locations: TestLocations;
let redis: Redis;
const prefix = uniquePrefix('mon_health_reads');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  schema = await createTestDatabase('mon_health_reads');
  database = schema.database;
  locations = await seedLocations(database.db);
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await schema?.close();
});

function monitor(keyPrefix: string, m: Record<string, unknown> = {}) {
  const config = monitorConfigSchema.parse({ keyPrefix, monitor: { progressStalls: false, ...m } });
  const metrics = createMonitorMetrics();
  const mon = new Monitor({
    db: database.db,
    redis,
    logger,
    config,
    monitorId: 'reads-monitor',
    recovery: { db: database.db, registry: createHandlerRegistry(), policy: config.recovery, logger },
    metrics,
  });
  const passes = async () =>
    ((await metrics.passes.get()).values as { value: number }[]).reduce((a, v) => a + v.value, 0);
  return { mon, passes };
}

function reporter(
  r: Redis,
  keyPrefix: string,
  name: string,
  intervalMs: number,
  livenessMs: number,
  ttlMs = livenessMs,
) {
  return new ServiceHealthReporter({
    redis: r,
    keyPrefix,
    serviceType: 'worker',
    serviceName: name,
    ttlMs,
    refreshMs: intervalMs,
    info: { heartbeatIntervalMs: intervalMs, livenessTimeoutMs: livenessMs },
  });
}

// a worker advertising a long bound (30 s; its health key TTL 3 s), a row of it with
// no member, then the health reads start to fail (here: the registry key has the wrong type, so
// HGETALL errors; the heartbeat keys are fine). #readWorkers kept the stale expiry, so checkAt =
// max(min(since + 30 s, stale expiry + 50), since + absentFor) was in the past for ~27 s: the loop ran
// a pass every 20 ms (MIN_SLEEP_MS), each re-reading the records once per such row.
it('failing health reads do not make the monitor loop every few ms', async () => {
  const keyPrefix = `${prefix}hot:`;
  const own = await connectTestRedis();
  const w = reporter(own, keyPrefix, 'w-hot', 1000, 30_000, 3000);
  await w.start();
  await seedOperation(database.db, locations, 'deletion', {
    status: 'in_progress',
    lastSeenAgoS: 600,
    claimedBy: 'w-hot',
  });
  const { mon, passes } = monitor(keyPrefix, {
    livenessTimeoutMs: 3000,
    heartbeatIntervalMs: 1000,
    loopIntervalMs: 300_000,
  });
  try {
    mon.start();
    await sleep(2000); // records read: alive, expires within 3 s
    await w.close();
    own.disconnect();
    const services = heartbeatKeys({ keyPrefix }).services;
    // The registry key with the wrong type: every read of the records fails (WRONGTYPE).
    await redis.del(services);
    await redis.set(services, 'not-a-hash');
    await sleep(3500); // the stale expiry and since + absentFor are both past
    const p0 = await passes();
    const cpu0 = process.cpuUsage();
    await sleep(5000);
    const n = (await passes()) - p0;
    const cpu = process.cpuUsage(cpu0);
    console.log(`${n} passes in 5 s; cpu ${(cpu.user + cpu.system) / 1000} ms`);
    expect(n).toBeLessThan(50);
  } finally {
    await mon.close();
  }
}, 45_000);
