import {
  connectTestRedis,
  deleteKeysWithPrefix,
  uniquePrefix,
  waitFor,
  captureLogs,
} from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HeartbeatEmitter,
  heartbeatKeys,
  HeartbeatLostError,
  HeartbeatScanner,
  type HeartbeatEmitterOptions,
  type LostTask,
} from '../src/index.js';

const prefix = uniquePrefix('hb_lost');
let redis: Redis;
let n = 0;
const open: HeartbeatEmitter[] = [];

function setup(options: Partial<HeartbeatEmitterOptions> = {}) {
  const keyPrefix = `${prefix}${++n}:`;
  const lost: LostTask[] = [];
  const emitter = new HeartbeatEmitter({
    redis,
    keyPrefix,
    intervalMs: 50,
    timeoutMs: 2_000,
    onLost: (l) => void lost.push(l),
    ...options,
  });
  open.push(emitter);
  return {
    emitter,
    lost,
    scanner: new HeartbeatScanner({ redis, keyPrefix }),
    keys: heartbeatKeys({ keyPrefix }),
  };
}

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((e) => e.close()));
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('lost tasks', () => {
  it('reports a missing member through the beat, the callback and the task signal; re-tracking works', async () => {
    const { emitter, lost, keys } = setup();
    const x = await emitter.track('data_transfer:1:4');
    const y = await emitter.track('data_transfer:2:0');
    await redis.zrem(keys.deadlines, 'data_transfer:1:4'); // recovered elsewhere, or Redis lost it

    const report = await emitter.beatNow();
    expect(report.lost.map((l) => [l.taskId, l.reason])).toEqual([['data_transfer:1:4', 'missing']]);
    expect(lost).toHaveLength(1);
    expect(x.signal.aborted).toBe(true);
    expect(x.signal.reason).toBeInstanceOf(HeartbeatLostError);
    expect(x.signal.reason).toMatchObject({
      code: 'HEARTBEAT_LOST',
      context: { taskId: 'data_transfer:1:4', reason: 'missing' },
    });
    expect(y.signal.aborted).toBe(false);
    expect(emitter.trackedIds()).toEqual(['data_transfer:2:0']);
    expect(x.progress(1)).toBe(false);

    // Reported once, not again with every beat.
    await emitter.beatNow();
    expect(lost).toHaveLength(1);

    // The worker checked its fenced row: still its own, so it registers again.
    const again = await emitter.track('data_transfer:1:4');
    expect(again.signal.aborted).toBe(false);
    await x.untrack(); // the stale handle must not remove the new registration
    expect(await redis.zscore(keys.deadlines, 'data_transfer:1:4')).not.toBeNull();
    expect((await emitter.beatNow()).lost).toEqual([]);
  });

  it('reports a task whose deadline passed while the event loop was frozen, and leaves it for the monitor', async () => {
    const { emitter, lost, scanner, keys } = setup({ timeoutMs: 150 });
    await emitter.start();
    const task = await emitter.track('raw_data_package:3:1');
    await waitFor(() => emitter.stats().beats >= 2);
    const frozenUntil = performance.now() + 300;
    while (performance.now() < frozenUntil) {
      // a synchronous freeze: no beats can run
    }
    const [l] = await waitFor(() => (lost.length > 0 ? lost : undefined));
    expect(l).toMatchObject({ taskId: 'raw_data_package:3:1', reason: 'expired' });
    expect(task.signal.aborted).toBe(true);
    // Not refreshed by the late beat: still expired, for the monitor to decide.
    expect((await scanner.scanExpired()).tasks.map((t) => t.taskId)).toEqual(['raw_data_package:3:1']);
    expect(await redis.zscore(keys.deadlines, 'raw_data_package:3:1')).not.toBeNull();
    expect(emitter.trackedIds()).toEqual([]);
  });

  it('reports, from the timer, a task the monitor recovered; a failing async onLost is only logged', async () => {
    const { logger, lines } = captureLogs();
    const seen: string[] = [];
    const { emitter, scanner } = setup({
      logger,
      timeoutMs: 100,
      onLost: async (l) => {
        seen.push(l.taskId);
        await Promise.resolve();
        throw new Error('database down while checking the row');
      },
    });
    const task = await emitter.track('deletion:8:0');
    // Not started yet: the task's process looks dead, so the monitor finds it and recovers it.
    const scan = await waitFor(async () => {
      const s = await scanner.scanExpired();
      return s.tasks.length === 1 ? s : undefined;
    });
    expect(await scanner.remove(scan.tasks)).toEqual({ removed: ['deletion:8:0'], kept: [] });
    await emitter.start();
    await waitFor(() => seen.length === 1);
    expect(task.signal.reason).toMatchObject({ context: { reason: 'missing' } });
    await waitFor(() => lines.some((l) => l['msg'] === 'onLost handler failed'));
    expect(emitter.stats()).toMatchObject({ lost: 1, tracked: 0, beatFailures: 0 });
  });
});
