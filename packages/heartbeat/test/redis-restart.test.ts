// Against a redis-server of this file's own (a free loopback port), killed and restarted by PID.
import type { CCATDataOperationError } from '@ccat/errors';
import { waitFor, captureLogs, PrivateRedis } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeartbeatEmitter, heartbeatKeys, type LostTask } from '../src/index.js';

let server: PrivateRedis;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => void unhandled.push(reason);

beforeAll(async () => {
  process.on('unhandledRejection', onUnhandled);
  server = await PrivateRedis.start();
});
afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  await server.kill();
});

function client(): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port: server.port,
    maxRetriesPerRequest: 1,
    retryStrategy: () => 50,
  });
  c.on('error', () => undefined); // connection errors while the server is down are expected
  return c;
}

describe('a Redis restart while emitters run', () => {
  it('emitters keep going, report every task Redis forgot, re-register, and close bounded', async () => {
    const keys = heartbeatKeys({ keyPrefix: 'restart:' });
    const errors: CCATDataOperationError[] = [];
    const lost: LostTask[] = [];
    const { logger, lines } = captureLogs();
    const redis = client();
    const observer = client();
    const emitter: HeartbeatEmitter = new HeartbeatEmitter({
      redis,
      logger,
      keyPrefix: 'restart:',
      intervalMs: 50,
      timeoutMs: 5_000,
      commandTimeoutMs: 300,
      onError: (e) => void errors.push(e),
      // What a worker does: check its fenced row (here: always still its own) and register again.
      onLost: async (l) => {
        lost.push(l);
        await emitter.track(l.taskId);
      },
    });
    // A second process whose worker does not re-register (its row moved on, say).
    const idleLost: LostTask[] = [];
    const idleRedis = client();
    const idle = new HeartbeatEmitter({
      redis: idleRedis,
      keyPrefix: 'restart:',
      intervalMs: 50,
      commandTimeoutMs: 300,
      onLost: (l) => void idleLost.push(l),
    });
    try {
      await emitter.start();
      await idle.start();
      await Promise.all(Array.from({ length: 10 }, (_, i) => emitter.track(`data_transfer:${i}:0`)));
      await idle.track('unpack:1:0');
      await waitFor(() => emitter.stats().beats >= 2);

      await server.kill();
      await waitFor(() => errors.length >= 3, { message: 'beats fail while Redis is down' });
      expect(errors.every((e) => e.retryable)).toBe(true);
      expect(emitter.trackedIds()).toHaveLength(10); // nothing dropped locally
      await expect(emitter.track('data_transfer:99:0')).rejects.toMatchObject({ retryable: true });

      await server.spawn(); // same port, empty: every member is gone
      await waitFor(() => lost.length >= 10, { timeoutMs: 15_000, message: 'every forgotten task reported' });
      expect(new Set(lost.map((l) => l.reason))).toEqual(new Set(['missing']));
      await waitFor(() => idleLost.length === 1, { message: 'the other process reports its task too' });
      await waitFor(async () => (await observer.zcard(keys.deadlines)) === 10, {
        timeoutMs: 10_000,
        message: 're-registered after the restart',
      });
      const beats = emitter.stats().beats;
      await waitFor(() => emitter.stats().beats >= beats + 3);
      expect(emitter.stats().consecutiveFailures).toBe(0);
      expect(lines.some((l) => l['msg'] === 'heartbeat restored')).toBe(true);

      // Closing while Redis is down again is bounded by commandTimeoutMs.
      await server.kill();
      await emitter.untrack('data_transfer:0:0'); // queued for later, does not throw
      const started = performance.now();
      await Promise.all([emitter.close(), idle.close()]);
      expect(performance.now() - started).toBeLessThan(2_000);
    } finally {
      redis.disconnect();
      idleRedis.disconnect();
      observer.disconnect();
    }
    expect(unhandled).toEqual([]);
  });
});
