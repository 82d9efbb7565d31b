// The monitor's maxmemory-policy check against private redis-servers: one with allkeys-lru (then
// switched to noeviction), one with CONFIG renamed away (as managed Redis services do).
import { spawn, type ChildProcess } from 'node:child_process';
import { WARN, captureLogs, freePort, PrivateRedis, waitFor } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMonitorMetrics } from '../src/metrics.js';
import { RedisPolicyCheck } from '../src/redis-policy.js';

let server: PrivateRedis;
let redis: Redis;
let noConfig: ChildProcess | undefined;
let noConfigRedis: Redis | undefined;

beforeAll(async () => {
  server = await PrivateRedis.start();
  redis = new Redis(server.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
});

afterAll(async () => {
  redis.disconnect();
  noConfigRedis?.disconnect();
  noConfig?.kill('SIGKILL');
  await server[Symbol.asyncDispose]();
});

async function gaugeLines(metrics: ReturnType<typeof createMonitorMetrics>): Promise<string[]> {
  const text = await metrics.registry.metrics();
  return text.split('\n').filter((l) => l.startsWith('ccat_redis_maxmemory_policy_ok{'));
}

describe('Redis maxmemory-policy check', () => {
  it('exports 0 with the policy and warns once when it is not noeviction; 1 once fixed', async () => {
    const { logger, lines } = captureLogs();
    const metrics = createMonitorMetrics();
    const notified: string[] = [];
    let outboxDown = true;
    const check = new RedisPolicyCheck({
      redis,
      logger,
      gauge: metrics.redisMaxmemoryPolicyOk,
      notify: ({ policy }) => {
        // The first attempt finds the outbox unreachable: queued at the next check instead.
        if (outboxDown) {
          outboxDown = false;
          return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'));
        }
        notified.push(policy);
        return Promise.resolve();
      },
    });
    expect(await check.check()).toEqual({ policy: 'allkeys-lru', ok: false });
    expect(notified).toEqual([]);
    await check.check();
    await check.check();
    expect(notified).toEqual(['allkeys-lru']);
    const warnings = lines.filter((l) => l.level === WARN && l['eventKind'] === 'redis_eviction_policy');
    expect(warnings).toHaveLength(1);
    expect(lines.filter((l) => l.level === WARN && String(l.msg).includes('cannot queue'))).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('allkeys-lru');
    expect(warnings[0]!.msg).toContain('noeviction');
    expect(await gaugeLines(metrics)).toEqual([
      'ccat_redis_maxmemory_policy_ok{policy="allkeys-lru",app="ccat-monitor"} 0',
    ]);

    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    expect(await check.check()).toEqual({ policy: 'noeviction', ok: true });
    // One series at a time: the old policy's series is gone.
    expect(await gaugeLines(metrics)).toEqual([
      'ccat_redis_maxmemory_policy_ok{policy="noeviction",app="ccat-monitor"} 1',
    ]);
    expect(lines.filter((l) => l.level === WARN && l['eventKind'] === 'redis_eviction_policy')).toHaveLength(
      1,
    );
    expect(notified).toEqual(['allkeys-lru']);
    check.close();
  });

  it('says "unknown" once when CONFIG is disabled', async () => {
    const port = await freePort();
    noConfig = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--rename-command', 'CONFIG', ''],
      { stdio: 'ignore' },
    );
    noConfigRedis = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50 });
    noConfigRedis.on('error', () => undefined);
    const client = noConfigRedis;
    await waitFor(
      () =>
        client.ping().then(
          (r) => r === 'PONG',
          () => false,
        ),
      { timeoutMs: 10_000 },
    );
    const { logger, lines } = captureLogs();
    const metrics = createMonitorMetrics();
    const check = new RedisPolicyCheck({ redis: client, logger, gauge: metrics.redisMaxmemoryPolicyOk });
    expect(await check.check()).toEqual({ policy: 'unknown', ok: false });
    expect(await check.check()).toEqual({ policy: 'unknown', ok: false });
    const warnings = lines.filter((l) => l.level === WARN);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.msg).toContain('unknown');
    expect(await gaugeLines(metrics)).toEqual([
      'ccat_redis_maxmemory_policy_ok{policy="unknown",app="ccat-monitor"} 0',
    ]);
    check.close();
  });
});
