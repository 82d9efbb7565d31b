import {
  connectTestRedis,
  deleteKeysWithPrefix,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatEmitter, HeartbeatScanner, type LostTask } from '../src/index.js';

const prefix = uniquePrefix('hb_many');
const EMITTERS = 50;
const TASKS_EACH = 20;
let redis: Redis;
const clients: Redis[] = [];
const emitters: HeartbeatEmitter[] = [];

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await Promise.all(emitters.map((e) => e.close()));
  await Promise.all(clients.map((c) => c.quit()));
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('50 emitters', () => {
  it('beat concurrently without losing or expiring anything; only the dead ones expire', async () => {
    const lost: LostTask[] = [];
    for (let i = 0; i < EMITTERS; i++) {
      // One connection per emitter, as one per worker process.
      const client = new Redis(testRedisUrl(), { maxRetriesPerRequest: 1 });
      clients.push(client);
      emitters.push(
        new HeartbeatEmitter({
          redis: client,
          keyPrefix: prefix,
          emitterId: `worker-${i}`,
          // Generous against a loaded CI machine: 50 emitters share this one event loop.
          intervalMs: 100,
          timeoutMs: 2_000,
          onLost: (l) => void lost.push(l),
        }),
      );
    }
    await Promise.all(
      emitters.map(async (e, i) => {
        await e.start();
        await Promise.all(
          Array.from({ length: TASKS_EACH }, (_, j) => e.track(`data_transfer:${i * 1000 + j}:0`)),
        );
      }),
    );
    const scanner = new HeartbeatScanner({ redis, keyPrefix: prefix });
    expect((await scanner.counts()).inFlight).toBe(EMITTERS * TASKS_EACH);
    await waitFor(() => emitters.every((e) => e.stats().beats >= 5), {
      message: 'every emitter beats 5 times',
    });
    expect(emitters.reduce((s, e) => s + e.stats().beatFailures, 0)).toBe(0);
    expect(lost).toEqual([]);
    expect(await scanner.counts()).toMatchObject({ inFlight: 1000, expiredDue: 0 });

    // Ten processes die; only their tasks expire, the others keep beating.
    const dead = emitters.slice(0, 10);
    await Promise.all(dead.map((e) => e.close()));
    const scan = await waitFor(
      async () => {
        const s = await scanner.scanExpired();
        return s.dueTotal === 10 * TASKS_EACH ? s : undefined;
      },
      { message: "the dead emitters' tasks expire" },
    );
    const deadIds = new Set(dead.map((e) => e.emitterId));
    expect(scan.tasks).toHaveLength(200);
    expect(scan.tasks.every((t) => deadIds.has(t.details!.emitterId))).toBe(true);
    const alive = emitters.slice(10);
    const beats = alive.map((e) => e.stats().beats);
    await waitFor(() => alive.every((e, i) => e.stats().beats >= beats[i]! + 3));
    expect((await scanner.scanExpired()).dueTotal).toBe(200);
    expect(lost).toEqual([]);
  });
});
