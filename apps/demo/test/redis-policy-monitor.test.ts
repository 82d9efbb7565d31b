// A real monitor process on a private redis-server with maxmemory-policy allkeys-lru: one WARNING
// log line, one WARNING notification in the outbox, and the gauge at 0 with the policy on /metrics.
import { freePort, PrivateRedis, waitFor } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createE2E, type E2E } from './support/system.js';

let e2e: E2E;
let server: PrivateRedis;

beforeAll(async () => {
  server = await PrivateRedis.start();
  const admin = new Redis(server.url);
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  admin.disconnect();
  e2e = await createE2E('redispolicy');
}, 60_000);

afterAll(async () => {
  await e2e?.close();
  await server?.[Symbol.asyncDispose]();
}, 60_000);

it('a monitor on a Redis with allkeys-lru warns once, notifies once, and exports the policy', async () => {
  const port = await freePort();
  const monitor = await e2e.monitor('policy-monitor', {
    redis: { url: server.url },
    http: { host: '127.0.0.1', port },
  });
  const rows = await waitFor(
    async () => {
      const found = await e2e.database.db
        .selectFrom('notifications')
        .select(['level', 'subject'])
        .where('event_kind', '=', 'redis_eviction_policy')
        .execute();
      return found.length > 0 && found;
    },
    { timeoutMs: 20_000, message: 'the redis_eviction_policy notification' },
  );
  expect(rows).toEqual([
    { level: 'WARNING', subject: 'Redis maxmemory-policy is allkeys-lru, not noeviction' },
  ]);
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  expect(metrics).toContain('ccat_redis_maxmemory_policy_ok{policy="allkeys-lru",app="ccat-monitor"} 0');
  const warnings = monitor.lines.filter((l) => l['eventKind'] === 'redis_eviction_policy');
  expect(warnings).toHaveLength(1);
  expect(warnings[0]!['level']).toBe(40);
  monitor.signal('SIGTERM');
  expect(await monitor.exited).toBe(0);
}, 90_000);
