// Reconciliation while the workers' health records cannot be read (adversary of 883d6bd): the
// expiry times read before are dropped, so a row waiting on one is not looked at in every pass.
import { seedOperation } from '@ccat/db/testing';
import { heartbeatKeys, ServiceHealthReporter } from '@ccat/heartbeat';
import { connectTestRedis } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { expect } from 'vitest';
import { createMonitorMetrics } from '../src/index.js';
import { monitorTest, type MonitorFactory } from './support/monitor-fixture.js';

const it = monitorTest('mon_health_reads');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function countingMonitor(monitor: MonitorFactory, keyPrefix: string, m: Record<string, unknown> = {}) {
  const metrics = createMonitorMetrics();
  const mon = monitor(
    { keyPrefix, monitor: { progressStalls: false, ...m } },
    { monitorId: 'reads-monitor', metrics },
  );
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
it('failing health reads do not make the monitor loop every few ms', async ({
  setup: { prefix, database, locations, redis, monitor },
}) => {
  const keyPrefix = `${prefix}hot:`;
  // The worker's own connection (not the fixture's): disconnected below, as a killed worker's is.
  const own = await connectTestRedis();
  const w = reporter(own, keyPrefix, 'w-hot', 1000, 30_000, 3000);
  await w.start();
  await seedOperation(database.db, locations, 'deletion', {
    status: 'in_progress',
    lastSeenAgoS: 600,
    claimedBy: 'w-hot',
  });
  const { mon, passes } = countingMonitor(monitor, keyPrefix, {
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
