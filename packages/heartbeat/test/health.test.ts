import {
  connectTestRedis,
  deleteKeysWithPrefix,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatKeys, releaseLease, ServiceHealthReader, ServiceHealthReporter } from '../src/index.js';
import { serverTime } from './support.js';

const prefix = uniquePrefix('hb_health');
let redis: Redis;

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('service health keys', () => {
  it('keeps a TTL key alive, and lists services alive, dead (with last seen) and stopped', async () => {
    const keys = heartbeatKeys({ keyPrefix: prefix });
    const reader = new ServiceHealthReader({ redis, keyPrefix: prefix });
    const common = { keyPrefix: prefix, ttlMs: 1_000, refreshMs: 100 };

    const alive = new ServiceHealthReporter({
      redis,
      serviceType: 'monitor',
      serviceName: 'cologne-1',
      pid: 4242,
      info: { version: '0.1.0' },
      ...common,
    });
    // A service whose process dies: its own connection goes away and nothing refreshes its key.
    const doomedClient = new Redis(testRedisUrl(), { maxRetriesPerRequest: 0, retryStrategy: () => null });
    doomedClient.on('error', () => undefined);
    const doomed = new ServiceHealthReporter({
      redis: doomedClient,
      serviceType: 'worker',
      serviceName: 'cha-worker-2',
      commandTimeoutMs: 200,
      ...common,
    });
    const stopped = new ServiceHealthReporter({
      redis,
      serviceType: 'worker',
      serviceName: 'cha-worker-1',
      ...common,
    });
    try {
      await Promise.all([alive.start(), doomed.start(), stopped.start()]);
      expect(alive.key).toBe(keys.health('monitor', 'cologne-1'));
      expect(await redis.pttl(alive.key)).toBeGreaterThan(0);
      expect(await redis.pttl(alive.key)).toBeLessThanOrEqual(1_000);
      expect((await reader.list()).services.map((s) => s.status)).toEqual(['alive', 'alive', 'alive']);

      // Its connection goes first, then the clock is read: a refresh (every 100 ms) sent in between
      // would otherwise land after the reading.
      doomedClient.disconnect();
      const lastSeenBeforeDeath = await serverTime(redis);
      await stopped.close();
      expect(await redis.exists(stopped.key)).toBe(0); // deleted at once on a graceful stop

      const listing = await waitFor(async () => {
        const l = await reader.list();
        return l.services.find((s) => s.serviceName === 'cha-worker-2')?.status === 'dead' ? l : undefined;
      });
      const byName = new Map(listing.services.map((s) => [s.serviceName, s]));
      expect(byName.get('cologne-1')).toMatchObject({
        serviceType: 'monitor',
        status: 'alive',
        alive: true,
        pid: 4242,
        info: { version: '0.1.0' },
        ttlMs: 1_000,
      });
      expect(byName.get('cologne-1')!.lastSeenAgoMs).toBeLessThan(1_000);
      expect(byName.get('cologne-1')!.expiresInMs).toBeGreaterThan(0);
      const dead = byName.get('cha-worker-2')!;
      expect(dead).toMatchObject({
        status: 'dead',
        alive: false,
        expiresInMs: undefined,
        stoppedAt: undefined,
      });
      expect(dead.lastSeenAt).toBeLessThanOrEqual(lastSeenBeforeDeath + 5);
      expect(dead.lastSeenAgoMs).toBeGreaterThanOrEqual(1_000);
      expect(byName.get('cha-worker-1')).toMatchObject({ status: 'stopped', alive: false });
      expect(byName.get('cha-worker-1')!.stoppedAt).toBeGreaterThan(0);

      // A corrupt registry entry is listed as such, the rest still read.
      await redis.hset(keys.services, 'worker:junk', 'not json');
      const withJunk = await reader.list();
      expect(withJunk.corrupt).toEqual([{ field: 'worker:junk', raw: 'not json' }]);
      expect(withJunk.services).toHaveLength(3);
      expect(await reader.forgetField('worker:junk')).toBe(true);
      expect(await reader.forget('worker', 'cha-worker-1')).toBe(true);
      expect((await reader.list()).services).toHaveLength(2);
    } finally {
      await Promise.all([alive.close(), doomed.close(), stopped.close()]);
    }
    // close is idempotent and, for a reporter whose connection is gone, bounded and quiet.
    await doomed.close();
    expect((await reader.list()).services.find((s) => s.serviceName === 'cologne-1')?.status).toBe('stopped');
  });

  it('publishes the queues a service serves; reads records written without them', async () => {
    const p = `${prefix}q:`;
    const keys = heartbeatKeys({ keyPrefix: p });
    const reader = new ServiceHealthReader({ redis, keyPrefix: p });
    const worker = new ServiceHealthReporter({
      redis,
      keyPrefix: p,
      serviceType: 'worker',
      serviceName: 'w-queues',
      ttlMs: 5_000,
      refreshMs: 50,
      queues: ['cha_primecam-raw_raw_data_package'],
    });
    // A record as services wrote it before queues were published (no `queues` field).
    const old = JSON.stringify({
      lastSeen: 1,
      ttlMs: 5_000,
      serviceType: 'worker',
      serviceName: 'w-old',
      host: 'h',
    });
    await redis.hset(keys.services, 'worker:w-old', old);
    await redis.set(keys.health('worker', 'w-old'), old, 'PX', 5_000);
    try {
      expect(() => worker.setQueues([''])).toThrow(/health/);
      worker.setQueues(['cha_primecam-raw_raw_data_package', 'cha_primecam-raw_deletion']);
      await worker.start();
      const byName = async () =>
        Object.fromEntries((await reader.list()).services.map((s) => [s.serviceName, s]));
      expect((await byName())['w-queues']).toMatchObject({
        status: 'alive',
        queues: ['cha_primecam-raw_raw_data_package', 'cha_primecam-raw_deletion'],
      });
      expect((await byName())['w-old']).toMatchObject({ status: 'alive', queues: undefined, host: 'h' });
      // A later change rides on the next refresh; new info keeps the queues, and new queues the info.
      worker.setQueues(['cha_primecam-raw_deletion']);
      await waitFor(async () => (await byName())['w-queues']?.queues?.length === 1, {
        timeoutMs: 3_000,
        message: 'the new queue list published',
      });
      expect(() => worker.setInfo({ ['k'.repeat(65)]: 1 })).toThrow(/health/);
      worker.setInfo({ claimsSince: 1234 });
      await waitFor(async () => (await byName())['w-queues']?.info?.['claimsSince'] === 1234, {
        timeoutMs: 3_000,
        message: 'the new info published',
      });
      expect((await byName())['w-queues']?.queues).toEqual(['cha_primecam-raw_deletion']);
      worker.setQueues(['cha_primecam-raw_raw_data_package']);
      await waitFor(
        async () => (await byName())['w-queues']?.queues?.[0] === 'cha_primecam-raw_raw_data_package',
        {
          timeoutMs: 3_000,
          message: 'the queues published again',
        },
      );
      expect((await byName())['w-queues']?.info).toEqual({ claimsSince: 1234 });
    } finally {
      await worker.close();
    }
  });

  it('start rejects with a classified error when the first write fails, and can be retried', async () => {
    // Not connected and no offline queue: the first write fails at once (and starts the connection).
    const c = new Redis(testRedisUrl(), { lazyConnect: true, enableOfflineQueue: false });
    c.on('error', () => undefined);
    const reporter = new ServiceHealthReporter({
      redis: c,
      keyPrefix: prefix,
      serviceType: 'worker',
      serviceName: 'offline',
      commandTimeoutMs: 200,
    });
    await expect(reporter.start()).rejects.toMatchObject({ retryable: true });
    await waitFor(() => c.status === 'ready');
    await reporter.start();
    expect(await redis.exists(reporter.key)).toBe(1);
    await reporter.close();
    await c.quit();
  });
});

describe('an exclusive name (a worker id)', () => {
  const exclusive = (name: string, client: Redis, extra: object = {}) =>
    new ServiceHealthReporter({
      redis: client,
      keyPrefix: prefix,
      serviceType: 'worker',
      serviceName: name,
      ttlMs: 1_000,
      refreshMs: 200,
      exclusive: true,
      ...extra,
    });
  const dying = () => {
    const c = new Redis(testRedisUrl(), { maxRetriesPerRequest: 0, retryStrategy: () => null });
    c.on('error', () => undefined);
    return c;
  };

  it('a second live process with the name is refused; one started after a predecessor died waits for its record to expire', async () => {
    const first = exclusive('w-twin', redis);
    await first.start();
    const twin = exclusive('w-twin', redis);
    const began = performance.now();
    await expect(twin.start()).rejects.toMatchObject({ code: 'SERVICE_NAME_IN_USE' });
    // Refused once the record was refreshed while it waited (200 ms), not after the whole TTL.
    expect(performance.now() - began).toBeLessThan(1_000);
    await first.close();

    // A predecessor that died (its connection gone: no more refreshes, no stop recorded).
    const doomed = dying();
    const predecessor = exclusive('w-restart', doomed);
    await predecessor.start();
    doomed.disconnect();
    const restarted = exclusive('w-restart', redis);
    const at = performance.now();
    await restarted.start();
    const waitedMs = performance.now() - at;
    expect(waitedMs).toBeGreaterThan(500);
    expect(waitedMs).toBeLessThan(2_500);
    const reader = new ServiceHealthReader({ redis, keyPrefix: prefix });
    const listed = async () => (await reader.list()).services.find((x) => x.serviceName === 'w-restart');
    expect(await listed()).toMatchObject({ status: 'alive' });
    await restarted.close();
    await predecessor.close();
    expect(await listed()).toMatchObject({ status: 'stopped' });
  });

  it('of two started at once exactly one runs; a process whose name was taken over stops refreshing and leaves the new record alone', async () => {
    const [a, b] = [exclusive('w-race', redis), exclusive('w-race', redis)];
    const results = await Promise.allSettled([a.start(), b.start()]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    await a.close();
    await b.close();

    // Silent past its TTL (its key expired), then another process took the name.
    const taken: string[] = [];
    const old = exclusive('w-over', redis, { onTaken: (e: Error) => taken.push(e.message) });
    await old.start();
    await redis.del(heartbeatKeys({ keyPrefix: prefix }).health('worker', 'w-over'));
    const next = exclusive('w-over', redis);
    await next.start();
    await waitFor(() => taken.length === 1, { timeoutMs: 3_000, message: 'onTaken called' });
    await old.close();
    const reader = new ServiceHealthReader({ redis, keyPrefix: prefix });
    expect((await reader.list()).services.find((x) => x.serviceName === 'w-over')).toMatchObject({
      status: 'alive',
    });
    await next.close();
  });

  it("a refresh that finds an older copy of another process's record (Redis restored from a snapshot) writes over it and keeps refreshing", async () => {
    const taken: string[] = [];
    const live = exclusive('w-restored', redis, { onTaken: (e: Error) => taken.push(e.message) });
    await live.start();
    const key = heartbeatKeys({ keyPrefix: prefix }).health('worker', 'w-restored');
    const ours = JSON.parse((await redis.get(key))!) as { lastSeen: number; incarnation: string };
    await redis.set(
      key,
      `{"lastSeen":${ours.lastSeen - 5_000},"ttlMs":1000,"incarnation":"predecessor"}`,
      'PX',
      1_000,
    );
    await waitFor(async () => (await redis.get(key))?.includes(ours.incarnation) === true, {
      timeoutMs: 3_000,
      message: 'our record written again',
    });
    await new Promise((r) => setTimeout(r, 500));
    expect(taken).toEqual([]);
    await live.close();
  });

  it('a record lost (a flush) while a second process waits is not taken before it would have expired: the live holder writes it again and the second is refused', async () => {
    const taken: string[] = [];
    const live = exclusive('w-flush', redis, { onTaken: (e: Error) => taken.push(e.message) });
    await live.start();
    const twin = exclusive('w-flush', redis);
    const outcome = twin.start().then(
      () => 'started',
      (e: { code?: string }) => `refused ${e.code}`,
    );
    await new Promise((r) => setTimeout(r, 100));
    await redis.del(heartbeatKeys({ keyPrefix: prefix }).health('worker', 'w-flush'));
    expect(await outcome).toBe('refused SERVICE_NAME_IN_USE');
    await new Promise((r) => setTimeout(r, 500));
    expect(taken).toEqual([]);
    await live.close();
    await twin.close();
  });
});

describe('releaseLease', () => {
  it('deletes the lease only while the token still holds it', async () => {
    const key = `${prefix}lease`;
    await redis.set(key, 'other', 'PX', 10_000);
    expect(await releaseLease(redis, key, 'mine')).toBe(false);
    expect(await redis.get(key)).toBe('other');
    expect(await releaseLease(redis, key, 'other')).toBe(true);
    expect(await redis.exists(key)).toBe(0);
  });
});
