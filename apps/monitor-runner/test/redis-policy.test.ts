// The monitor's maxmemory-policy check against private redis-servers: one with allkeys-lru (then
// switched to noeviction), one with CONFIG renamed away (as managed Redis services do), and a
// 3-primary Cluster with allkeys-lru on one primary only.
import { spawn, type ChildProcess } from 'node:child_process';
import { WARN, captureLogs, freePort, PrivateRedis, PrivateRedisCluster, waitFor } from '@ccat/test-support';
import { Cluster, Redis } from 'ioredis';
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

  // issue 15 (deployment): CONFIG GET on a Cluster answers for whichever node serves it; with the
  // wrong policy on one primary the gauge alternated and the WARNING repeated.
  it('on a Cluster reads every primary and reports the worst one, naming it, with one WARNING', async () => {
    await using cluster = await PrivateRedisCluster.start(3);
    const client = new Cluster(
      cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    client.on('error', () => undefined);
    try {
      await waitFor(() => client.status === 'ready', { timeoutMs: 10_000, message: 'the cluster client' });
      // The primary owning the hash tag's slot (as a deployment's `{ccat}` keys would land).
      const owner = await client.cluster('KEYSLOT', '{ccat}').then((slot) => {
        const node = client.slots[slot]?.[0];
        if (node === undefined) throw new Error(`no node for slot ${slot}`);
        return node;
      });
      const [host, port] = owner.split(':');
      const direct = new Redis({ host, port: Number(port), lazyConnect: true });
      await direct.connect();
      await direct.config('SET', 'maxmemory-policy', 'allkeys-lru');
      direct.disconnect();

      const { logger, lines } = captureLogs();
      const metrics = createMonitorMetrics();
      const notified: (string | undefined)[] = [];
      const check = new RedisPolicyCheck({
        redis: client,
        logger,
        gauge: metrics.redisMaxmemoryPolicyOk,
        notify: ({ node }) => {
          notified.push(node);
          return Promise.resolve();
        },
      });
      for (let i = 0; i < 12; i++) {
        expect(await check.check()).toEqual({ policy: 'allkeys-lru', ok: false, node: owner, primaries: 3 });
        expect(await gaugeLines(metrics)).toEqual([
          'ccat_redis_maxmemory_policy_ok{policy="allkeys-lru",app="ccat-monitor"} 0',
        ]);
      }
      const warnings = lines.filter((l) => l.level === WARN && l['eventKind'] === 'redis_eviction_policy');
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ node: owner, policy: 'allkeys-lru' });
      expect(warnings[0]!.msg).toContain(owner);
      expect(notified).toEqual([owner]);

      const fix = new Redis({ host, port: Number(port), lazyConnect: true });
      await fix.connect();
      await fix.config('SET', 'maxmemory-policy', 'noeviction');
      fix.disconnect();
      expect(await check.check()).toMatchObject({ policy: 'noeviction', ok: true, primaries: 3 });
      expect(await gaugeLines(metrics)).toEqual([
        'ccat_redis_maxmemory_policy_ok{policy="noeviction",app="ccat-monitor"} 1',
      ]);
      check.close();
    } finally {
      client.disconnect();
    }
  }, 90_000);
});
