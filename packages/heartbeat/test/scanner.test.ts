import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix, waitFor } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HeartbeatEmitter,
  heartbeatKeys,
  HeartbeatScanner,
  type HeartbeatEmitterOptions,
  type StalledTask,
} from '../src/index.js';
import { serverTime } from './support.js';

const prefix = uniquePrefix('hb_scanner');
let redis: Redis;
let n = 0;
const open: HeartbeatEmitter[] = [];

function setup(options: Partial<HeartbeatEmitterOptions> = {}, batchSize?: number) {
  const keyPrefix = `${prefix}${++n}:`;
  const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 50, timeoutMs: 5_000, ...options });
  open.push(emitter);
  const scanner = new HeartbeatScanner({ redis, keyPrefix, ...(batchSize !== undefined && { batchSize }) });
  return { emitter, scanner, keys: heartbeatKeys({ keyPrefix }) };
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

describe('HeartbeatScanner', () => {
  it('finds an expired task with the first scan after its deadline, never before', async () => {
    const { emitter, scanner } = setup({ timeoutMs: 800 });
    await emitter.start();
    await emitter.track('data_transfer:11:2', {
      queue: 'cha_buffer_data_transfer',
      progress: { bytesDone: 5 },
    });
    await waitFor(() => emitter.stats().beats >= 2);
    await emitter.close(); // the process "dies": no more beats
    const { deadline } = (await scanner.list()).tasks[0]!;

    const early = await scanner.scanExpired();
    expect(early.serverTime).toBeLessThan(deadline);
    expect(early.tasks).toEqual([]);

    const next = await scanner.nextDeadline();
    expect(next).toMatchObject({ at: deadline, kind: 'deadline' });
    expect(next!.inMs).toBeLessThanOrEqual(800);
    // Poll Redis time (not the scanner) until the deadline is behind us; then exactly one scan.
    await waitFor(async () => (await serverTime(redis)) > deadline, { intervalMs: 5 });
    const scan = await scanner.scanExpired();
    expect(scan.dueTotal).toBe(1);
    expect(scan.tasks).toHaveLength(1);
    const [task] = scan.tasks;
    expect(task).toMatchObject({
      kind: 'expired',
      taskId: 'data_transfer:11:2',
      deadline,
      details: { emitterId: emitter.emitterId, queue: 'cha_buffer_data_transfer', timeoutMs: 800 },
      progress: { value: { bytesDone: 5 } },
    });
    expect(task!.overdueMs).toBeGreaterThan(0);
    expect(task!.overdueMs).toBeLessThan(200);
    expect(scan.corrupt).toEqual([]);
    expect(await scanner.remove(scan.tasks)).toEqual({ removed: ['data_transfer:11:2'], kept: [] });
    expect(await scanner.nextDeadline()).toBeUndefined();
  });

  it('finds a progress stall while the process keeps beating', async () => {
    const { emitter, scanner } = setup({ timeoutMs: 5_000, progressTimeoutMs: 600 });
    await emitter.start();
    const moving = await emitter.track('data_transfer:1:0', { progress: { bytesDone: 0 } });
    await emitter.track('data_transfer:2:0', { progress: { bytesDone: 0 } });
    await emitter.track('data_transfer:3:0', { progressTimeoutMs: null }); // not watched
    let bytes = 0;
    const mover = setInterval(() => moving.progress({ bytesDone: (bytes += 100) }), 20);
    try {
      const scan = await waitFor(async () => {
        const s = await scanner.scanStalled();
        return s.tasks.length > 0 ? s : undefined;
      });
      expect(scan.tasks.map((t) => t.taskId)).toEqual(['data_transfer:2:0']);
      const stalled = scan.tasks[0]!;
      expect(stalled.deadline).toBeGreaterThan(scan.serverTime); // it still beats
      expect(stalled.stalledForMs).toBeGreaterThanOrEqual(600);
      expect(stalled.progress?.value).toEqual({ bytesDone: 0 });
      expect((await scanner.scanExpired()).tasks).toEqual([]);
      // Beats keep coming for it; they do not count as progress.
      const beats = emitter.stats().beats;
      await waitFor(() => emitter.stats().beats >= beats + 3);
      expect((await scanner.scanStalled()).tasks.map((t) => t.taskId)).toEqual(['data_transfer:2:0']);
      expect(await scanner.remove([stalled])).toEqual({ removed: ['data_transfer:2:0'], kept: [] });
    } finally {
      clearInterval(mover);
    }
  });

  it('compare-and-delete keeps a member re-registered, a newer attempt, and one whose deadline moved', async () => {
    const { emitter, scanner, keys } = setup({ timeoutMs: 100, progressTimeoutMs: 100 });
    // Not started: nothing beats, everything expires.
    for (const id of ['unpack:5:1', 'unpack:6:1', 'unpack:7:1', 'unpack:8:1']) await emitter.track(id);
    const scan = await waitFor(async () => {
      const s = await scanner.scanExpired();
      return s.tasks.length === 4 ? s : undefined;
    });
    // unpack:5:1 is re-registered for the same attempt (the worker found its row still its own).
    await emitter.track('unpack:5:1', { timeoutMs: 10_000 });
    // unpack:6 was recovered and its next attempt registered meanwhile.
    await emitter.track('unpack:6:2', { timeoutMs: 10_000 });
    // unpack:8:1's deadline moved after the read (a beat that raced in).
    const moved = Number(await redis.zscore(keys.deadlines, 'unpack:8:1')) + 1;
    await redis.zadd(keys.deadlines, 'XX', moved, 'unpack:8:1');
    // unpack:7:1 is untouched.
    const result = await scanner.remove(scan.tasks);
    expect([...result.removed].sort()).toEqual(['unpack:6:1', 'unpack:7:1']);
    expect([...result.kept].sort()).toEqual(['unpack:5:1', 'unpack:8:1']);
    expect((await redis.zrange(keys.deadlines, 0, -1)).sort()).toEqual([
      'unpack:5:1',
      'unpack:6:2',
      'unpack:8:1',
    ]);
    expect(await redis.hexists(keys.details, 'unpack:5:1')).toBe(1);
    expect(await redis.hexists(keys.details, 'unpack:7:1')).toBe(0);
    // Removing again: already gone, so kept (nothing to delete) and nothing else touched.
    expect((await scanner.remove(scan.tasks)).removed).toEqual([]);
    expect(await redis.zcard(keys.deadlines)).toBe(3);
  });

  it('compare-and-delete keeps a stalled member that beat again with new progress', async () => {
    const { emitter, scanner } = setup({ timeoutMs: 10_000, progressTimeoutMs: 150 });
    await emitter.start();
    const task = await emitter.track('archive:1:0', { progress: 0 });
    const scan = await waitFor(async () => {
      const s = await scanner.scanStalled();
      return s.tasks.length === 1 ? s : undefined;
    });
    const stalled: StalledTask = scan.tasks[0]!;
    task.progress(1);
    const beats = emitter.stats().beats;
    await waitFor(() => emitter.stats().beats >= beats + 2);
    expect(await scanner.remove([stalled])).toEqual({ removed: [], kept: ['archive:1:0'] });
    expect((await scanner.scanStalled()).tasks).toEqual([]);
  });

  it('reads expired members in batches of batchSize', async () => {
    const { emitter, scanner } = setup({ intervalMs: 10, timeoutMs: 20 }, 10);
    await Promise.all(Array.from({ length: 25 }, (_, i) => emitter.track(`deletion:${i}:0`)));
    const first = await waitFor(async () => {
      const s = await scanner.scanExpired();
      return s.dueTotal === 25 ? s : undefined;
    });
    expect(first.tasks).toHaveLength(10);
    const seen = new Set(first.tasks.map((t) => t.taskId));
    const skip = await scanner.scanExpired({ offset: 10, limit: 5 });
    expect(skip.tasks).toHaveLength(5);
    await scanner.remove(first.tasks);
    for (;;) {
      const s = await scanner.scanExpired();
      if (s.tasks.length === 0) break;
      s.tasks.forEach((t) => seen.add(t.taskId));
      await scanner.remove(s.tasks);
    }
    expect(seen.size).toBe(25);
    expect(scanner.stats()).toMatchObject({ removed: 25, kept: 0 });
  });

  it('returns a batch larger than one bulk chunk intact', async () => {
    const { emitter, scanner, keys } = setup({ intervalMs: 10, timeoutMs: 20 }, 1_500);
    await Promise.all(
      Array.from({ length: 1_600 }, (_, i) => emitter.track(`raw_data_package:${i}:0`, { progress: i })),
    );
    const scan = await waitFor(async () => {
      const s = await scanner.scanExpired();
      return s.dueTotal === 1_600 ? s : undefined;
    });
    expect(scan.tasks).toHaveLength(1_500);
    expect(scan.corrupt).toEqual([]);
    for (const t of scan.tasks) expect(t.progress?.value).toBe(Number(t.taskId.split(':')[1]));
    expect((await scanner.list({ limit: 1_600 })).tasks.every((t) => t.details?.timeoutMs === 20)).toBe(true);
    // Removed past one bulk chunk too; an entry given twice is removed once (the second is kept).
    const result = await scanner.remove([...scan.tasks, scan.tasks[7]!]);
    expect(result.removed).toHaveLength(1_500);
    expect(result.kept).toEqual([scan.tasks[7]!.taskId]);
    const rest = await scanner.scanExpired();
    expect(rest.dueTotal).toBe(100);
    expect(rest.tasks.every((t) => !result.removed.includes(t.taskId))).toBe(true);
    expect(await redis.hlen(keys.details)).toBe(100);
  });

  it('lists in-flight tasks with heartbeat age and progress, and counts them', async () => {
    const { emitter, scanner } = setup({ timeoutMs: 5_000 });
    await emitter.start();
    const a = await emitter.track('raw_data_package:1:0', {
      progress: { files: 1 },
      attributes: { site: 'cha' },
    });
    await emitter.track('raw_data_package:2:0', { timeoutMs: 8_000 });
    a.progress({ files: 2 });
    await waitFor(async () => (await scanner.list()).tasks[0]?.progress?.value !== undefined);
    await waitFor(async () => {
      const t = (await scanner.list()).tasks.find((x) => x.taskId === 'raw_data_package:1:0');
      return (t?.progress?.value as { files?: number } | undefined)?.files === 2;
    });
    const listed = await scanner.list();
    expect(listed.total).toBe(2);
    expect(listed.tasks.map((t) => t.taskId)).toEqual(['raw_data_package:1:0', 'raw_data_package:2:0']);
    const [first] = listed.tasks;
    expect(first!.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(first!.heartbeatAgeMs).toBeLessThan(1_000);
    expect(first!.details?.attributes).toEqual({ site: 'cha' });
    expect(first!.progressAgeMs).toBeGreaterThanOrEqual(0);
    expect(first!.corrupt).toBeUndefined();
    expect(await scanner.counts()).toMatchObject({ inFlight: 2, expiredDue: 0, stalledDue: 0, corrupt: 0 });
    expect((await scanner.list({ offset: 1, limit: 1 })).tasks.map((t) => t.taskId)).toEqual([
      'raw_data_package:2:0',
    ]);
  });
});
