// A HeartbeatEmitter given a ServiceHealthReporter (`health`) refreshes the record inside its own
// script calls. The NOSCRIPT case runs against a redis-server of this file's own (SCRIPT FLUSH).
import { ConfigurationError } from '@ccat/errors';
import { connectTestRedis, deleteKeysWithPrefix, PrivateRedis, uniquePrefix } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HeartbeatEmitter,
  heartbeatKeys,
  ServiceHealthReporter,
  type HeartbeatEmitterOptions,
  type ServiceNameInUseError,
} from '../src/index.js';
import { runScript } from '../src/internal/scripts.js';

const prefix = uniquePrefix('hb_emitter_health');
let redis: Redis;
let n = 0;
const open: { close(): Promise<void> }[] = [];

/** A worker's pair over a fresh key prefix: an exclusive record and an emitter that refreshes it. */
function pair(
  client: Redis,
  options: Partial<HeartbeatEmitterOptions> = {},
  onTaken?: (e: ServiceNameInUseError) => void,
) {
  const keyPrefix = `${prefix}${++n}:`;
  const health = new ServiceHealthReporter({
    redis: client,
    keyPrefix,
    serviceType: 'worker',
    serviceName: `w${n}`,
    ttlMs: 2_000,
    refreshMs: 100,
    exclusive: true,
    ...(onTaken && { onTaken }),
  });
  const emitter = new HeartbeatEmitter({
    redis: client,
    keyPrefix,
    intervalMs: 30_000, // beats by beatNow() only
    timeoutMs: 60_000,
    registerOnNextBeat: true,
    health,
    ...options,
  });
  open.push(emitter, health);
  const keys = heartbeatKeys({ keyPrefix });
  return { health, emitter, keys, healthKey: keys.health('worker', `w${n}`) };
}

async function record(client: Redis, key: string): Promise<Record<string, unknown> | null> {
  const raw = await client.get(key);
  return raw === null ? null : (JSON.parse(raw) as Record<string, unknown>);
}

async function registeredAt(client: Redis, detailsKey: string, id: string): Promise<number> {
  return (JSON.parse((await client.hget(detailsKey, id))!) as { registeredAt: number }).registeredAt;
}

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterEach(async () => {
  for (const o of open.splice(0).reverse()) await o.close();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('HeartbeatEmitter with a health record', () => {
  it('writes the record in the script that registers, refreshes it with every beat (also with no task), and only while the reporter runs', async () => {
    const { health, emitter, keys, healthKey } = pair(redis);
    // Not started: beats neither write the record nor make a round trip when there is nothing else.
    expect((await emitter.beatNow()).serverTime).toBeUndefined();
    expect(await redis.exists(healthKey)).toBe(0);
    await health.start();
    const first = (await record(redis, healthKey))!.lastSeen as number;
    await new Promise((r) => setTimeout(r, 300)); // the reporter's own timer (100 ms) no longer runs
    expect((await record(redis, healthKey))!.lastSeen).toBe(first);

    const idle = await emitter.beatNow();
    expect(idle.serverTime).toBeDefined();
    expect((await record(redis, healthKey))!.lastSeen).toBe(idle.serverTime);

    await emitter.track('unpack:1:0');
    const beat = await emitter.beatNow();
    expect(beat.registered).toBe(1);
    // One script call: the registration and the record carry the same Redis time.
    expect((await record(redis, healthKey))!.lastSeen).toBe(
      await registeredAt(redis, keys.details, 'unpack:1:0'),
    );
    expect(await redis.pttl(healthKey)).toBeGreaterThan(1_500);

    await health.close();
    expect(await redis.exists(healthKey)).toBe(0);
    await emitter.beatNow();
    expect(await redis.exists(healthKey)).toBe(0); // closed: beats no longer write it
  });

  it('a beat split over several calls writes the record with its last call, only when every call before it ran', async () => {
    const { health, emitter, keys, healthKey } = pair(redis, { maxTasksPerScript: 1 });
    await health.start();
    for (const id of ['unpack:1:0', 'unpack:2:0', 'unpack:3:0']) await emitter.track(id);
    await emitter.beatNow();
    const lastSeen = (await record(redis, healthKey))!.lastSeen;
    expect(lastSeen).toBe(await registeredAt(redis, keys.details, 'unpack:3:0'));
    expect(await redis.exists(`${keys.namespace}hb:chain:${emitter.emitterId}`)).toBe(0);

    // The last call of a beat whose first call did not run (NOSCRIPT, an error): no record written.
    const before = await redis.get(healthKey);
    const reply = (await runScript(
      redis,
      'beat',
      [
        keys.deadlines,
        keys.progressDeadlines,
        keys.details,
        keys.progress,
        healthKey,
        keys.services,
        `${keys.namespace}hb:chain:x`,
      ],
      [0, 0, 0, 0, 2, 2, 'x:1', 'worker:wx', 2_000, '{"incarnation":"zz"}', 'zz'],
    )) as unknown[];
    expect(reply[1]).toBe(2);
    expect(await redis.get(healthKey)).toBe(before);
  });

  it('a beat that finds the name taken by another process calls onTaken once and stops writing the record', async () => {
    const taken: ServiceNameInUseError[] = [];
    const { health, emitter, healthKey } = pair(redis, {}, (e) => taken.push(e));
    await health.start();
    // Written after this process's last write: a process that took the name over.
    const [sec] = await redis.time();
    const other = `{"lastSeen":${Number(sec) * 1000 + 1000},"ttlMs":60000,"incarnation":"someone-else"}`;
    await redis.set(healthKey, other, 'PX', 60_000);
    await emitter.track('unpack:1:0');
    await emitter.beatNow();
    await emitter.beatNow();
    expect(taken.map((e) => e.code)).toEqual(['SERVICE_NAME_IN_USE']);
    expect(await redis.get(healthKey)).toBe(other);
  });

  it("another process's record older than this process's last write (Redis restored from a snapshot) is written over, not taken for a takeover", async () => {
    const taken: ServiceNameInUseError[] = [];
    const { health, emitter, healthKey } = pair(redis, {}, (e) => taken.push(e));
    await health.start();
    await emitter.beatNow();
    const ours = (await record(redis, healthKey))!;
    // The predecessor's record as a snapshot taken before this process started holds it.
    const restored = `{"lastSeen":${Number(ours.lastSeen) - 5_000},"ttlMs":2000,"incarnation":"predecessor"}`;
    await redis.set(healthKey, restored, 'PX', 2_000);
    await emitter.track('unpack:1:0');
    await emitter.beatNow();
    expect(taken).toEqual([]);
    expect(await record(redis, healthKey)).toMatchObject({ incarnation: ours.incarnation });
    // Still refreshed by each beat, and a later takeover is still one.
    await emitter.beatNow();
    const [sec] = await redis.time();
    await redis.set(
      healthKey,
      `{"lastSeen":${Number(sec) * 1000 + 1000},"ttlMs":60000,"incarnation":"x"}`,
      'PX',
      60_000,
    );
    await emitter.beatNow();
    expect(taken.map((e) => e.code)).toEqual(['SERVICE_NAME_IN_USE']);
  });

  it("Redis's clock behind this process's last write (stepped back): another process's older-looking record is a takeover, not a copy", async () => {
    // Two live processes wrote over each other's record after a 90 s step back (issue 13 adversary,
    // round 7): each one's own last write was ahead of every record Redis then wrote.
    const { healthKey, keys } = pair(redis);
    const [sec, micro] = await redis.time();
    const now = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
    const write = (ownLastSeen: number) =>
      runScript(
        redis,
        'healthBeat',
        [healthKey, keys.services],
        ['worker:x', 2_000, '{"incarnation":"mine"}', 'mine', '', String(ownLastSeen)],
      );
    const other = `{"lastSeen":${now - 1_000},"ttlMs":60000,"incarnation":"other"}`;
    await redis.set(healthKey, other, 'PX', 60_000);
    // Our last write 90 s ahead of Redis's clock now: the clock went back.
    expect(await write(now + 90_000)).toEqual(['taken', other]);
    expect(await redis.get(healthKey)).toBe(other);
    // Our last write behind Redis's clock and after the record: a restored copy, written over.
    expect(await write(now - 500)).toEqual(['replaced', other, expect.any(Number)]);
    expect(await record(redis, healthKey)).toMatchObject({ incarnation: 'mine' });
  });

  it('refuses a record outside its keyspace (one script writes both: one hash tag)', () => {
    const health = new ServiceHealthReporter({
      redis,
      keyPrefix: `${prefix}a:`,
      serviceType: 'worker',
      serviceName: 'w',
    });
    expect(() => new HeartbeatEmitter({ redis, keyPrefix: `${prefix}b:`, health })).toThrow(
      ConfigurationError,
    );
  });
});

describe('HeartbeatEmitter with a health record, after SCRIPT FLUSH (its own redis-server)', () => {
  let server: PrivateRedis;
  beforeAll(async () => {
    server = await PrivateRedis.start();
  });
  afterAll(async () => {
    await server.stop();
  });

  it('the record is never written before the registration it follows (ioredis resends the script after NOSCRIPT)', async () => {
    const worker = new Redis(server.url);
    const other = new Redis(server.url);
    try {
      const { health, emitter, keys, healthKey } = pair(worker);
      await health.start();
      await emitter.beatNow();
      // Another process's beat loads the same script again at once after the flush (the adversary's
      // case: a separate health command ran before this worker's resent beat).
      const { health: h2, emitter: e2 } = pair(other);
      await h2.start();
      await other.script('FLUSH');
      await e2.beatNow();
      await emitter.track('unpack:7:0');
      const beat = await emitter.beatNow();
      expect(beat.registered).toBe(1);
      expect((await record(worker, healthKey))!.lastSeen).toBe(
        await registeredAt(worker, keys.details, 'unpack:7:0'),
      );
    } finally {
      for (const o of open.splice(0).reverse()) await o.close();
      worker.disconnect();
      other.disconnect();
    }
  });

  /** Keeps the server busy for `ms` (a script that spins): commands sent meanwhile run after it. */
  const busy = (client: Redis, ms: number) =>
    client.eval(
      "local t = redis.call('TIME') local s = t[1] * 1000000 + t[2] repeat local n = redis.call('TIME') until n[1] * 1000000 + n[2] - s > tonumber(ARGV[1]) return 1",
      0,
      ms * 1000,
    );

  it('a beat that times out here but runs in Redis still reports what Redis lost, and the lost task is registered again', async () => {
    // A link slower than commandTimeoutMs after Redis lost a member: the beats run in Redis but time
    // out here, so the member was never reported and never came back, and the task of a live worker
    // was recovered (issue 13 adversary, a flush and a 5.5 s link).
    const worker = new Redis(server.url);
    const blocker = new Redis(server.url);
    try {
      const lost: string[] = [];
      const keyPrefix = `${prefix}slow:`;
      const keys = heartbeatKeys({ keyPrefix });
      const emitter = new HeartbeatEmitter({
        redis: worker,
        keyPrefix,
        intervalMs: 30_000,
        timeoutMs: 60_000,
        commandTimeoutMs: 100,
        registerOnNextBeat: true,
        onLost: (l) => void lost.push(`${l.taskId} ${l.reason}`),
      });
      open.push(emitter);
      await emitter.track('unpack:1:0');
      await emitter.beatNow();
      await blocker.zrem(keys.deadlines, 'unpack:1:0'); // Redis lost it
      const spinning = busy(blocker, 400);
      await new Promise((r) => setTimeout(r, 20));
      await expect(emitter.beatNow()).rejects.toMatchObject({ code: 'REDIS_TIMEOUT' });
      expect(lost).toEqual([]);
      await spinning;
      await new Promise((r) => setTimeout(r, 100));
      expect(lost).toEqual(['unpack:1:0 missing']);

      // Registered again at once through the same slow link: it times out, the task stays tracked and
      // its registration rides on the next beat.
      const again = busy(blocker, 400);
      await new Promise((r) => setTimeout(r, 20));
      const handle = await emitter.track('unpack:1:0', { now: true });
      expect(handle.signal.aborted).toBe(false);
      expect(emitter.trackedIds()).toEqual(['unpack:1:0']);
      await again;
      expect((await emitter.beatNow()).registered).toBe(1);
      expect(await worker.zscore(keys.deadlines, 'unpack:1:0')).not.toBeNull();
    } finally {
      for (const o of open.splice(0).reverse()) await o.close();
      worker.disconnect();
      blocker.disconnect();
    }
  });
});
