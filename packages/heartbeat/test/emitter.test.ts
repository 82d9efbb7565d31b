import { ValidationError } from '@ccat/errors';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix, waitFor } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  HeartbeatClosedError,
  HeartbeatEmitter,
  heartbeatKeys,
  HeartbeatScanner,
  InvalidTaskIdError,
  type HeartbeatEmitterOptions,
} from '../src/index.js';
import { serverTime } from './support.js';

const prefix = uniquePrefix('hb_emitter');
let redis: Redis;
let n = 0;
const open: HeartbeatEmitter[] = [];

/** A fresh key prefix per test (all under the file's prefix) and an emitter over it. */
function setup(options: Partial<HeartbeatEmitterOptions> = {}) {
  const keyPrefix = `${prefix}${++n}:`;
  const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 50, timeoutMs: 2_000, ...options });
  open.push(emitter);
  const scanner = new HeartbeatScanner({ redis, keyPrefix });
  return { emitter, scanner, keys: heartbeatKeys({ keyPrefix }) };
}

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(open.splice(0).map((e) => e.close()));
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('HeartbeatEmitter', () => {
  it('registers with a deadline of Redis time + timeout, beats it forward, and untracks everywhere', async () => {
    const { emitter, keys } = setup();
    const before = await serverTime(redis);
    await emitter.track('raw_data_package:1:0', {
      queue: 'cha_buffer_raw_data_package',
      progress: { bytesDone: 0 },
    });
    const after = await serverTime(redis);
    const first = Number(await redis.zscore(keys.deadlines, 'raw_data_package:1:0'));
    expect(first).toBeGreaterThanOrEqual(before + 2_000);
    expect(first).toBeLessThanOrEqual(after + 2_000);
    const details = JSON.parse((await redis.hget(keys.details, 'raw_data_package:1:0'))!);
    expect(details).toMatchObject({
      emitterId: emitter.emitterId,
      timeoutMs: 2_000,
      queue: 'cha_buffer_raw_data_package',
    });
    expect(details.registeredAt).toBeGreaterThanOrEqual(before);
    expect(await redis.hget(keys.progress, 'raw_data_package:1:0')).toMatch(/^\d+:\{"bytesDone":0\}$/);

    await emitter.start();
    await waitFor(async () => Number(await redis.zscore(keys.deadlines, 'raw_data_package:1:0')) > first, {
      message: 'the deadline moves forward with beats',
    });

    await emitter.untrack('raw_data_package:1:0');
    expect(await redis.zcard(keys.deadlines)).toBe(0);
    expect(await redis.hlen(keys.details)).toBe(0);
    expect(await redis.hlen(keys.progress)).toBe(0);
    expect(emitter.trackedIds()).toEqual([]);
  });

  it('untracks of one tick share a round trip; with removeOnNextBeat they ride on the next beat', async () => {
    const { emitter, keys } = setup();
    await Promise.all(Array.from({ length: 20 }, (_, i) => emitter.track(`unpack:${i}:0`)));
    const send = vi.spyOn(redis, 'sendCommand');
    await Promise.all(Array.from({ length: 20 }, (_, i) => emitter.untrack(`unpack:${i}:0`)));
    expect(send.mock.calls.length).toBe(1);
    expect(await redis.zcard(keys.deadlines)).toBe(0);
    send.mockRestore();

    const deferred = setup({ removeOnNextBeat: true, intervalMs: 100, timeoutMs: 1000 });
    await deferred.emitter.track('deletion:1:0');
    await deferred.emitter.track('deletion:2:0');
    const spy = vi.spyOn(redis, 'sendCommand');
    await deferred.emitter.untrack('deletion:1:0');
    // No round trip yet: the member stays until the next beat, which removes it (long before it could expire).
    expect(spy.mock.calls.length).toBe(0);
    expect(await redis.zscore(deferred.keys.deadlines, 'deletion:1:0')).not.toBeNull();
    await deferred.emitter.start();
    await waitFor(async () => (await redis.zscore(deferred.keys.deadlines, 'deletion:1:0')) === null, {
      message: 'removed by the next beat',
    });
    expect(await redis.zscore(deferred.keys.deadlines, 'deletion:2:0')).not.toBeNull();
    // A removal still pending at close is sent then.
    await deferred.emitter.untrack('deletion:2:0');
    await deferred.emitter.close();
    expect(await redis.zcard(deferred.keys.deadlines)).toBe(0);
  });

  it('with registerOnNextBeat a registration rides on the next beat; a task that ends before it never touches Redis', async () => {
    const { emitter, keys } = setup({
      registerOnNextBeat: true,
      removeOnNextBeat: true,
      intervalMs: 100,
      timeoutMs: 1000,
      commandTimeoutMs: 200,
    });
    const send = vi.spyOn(redis, 'sendCommand');
    const short = await emitter.track('unpack:1:0');
    const long = await emitter.track('unpack:2:0', { progress: { bytes: 0 } });
    emitter.progress('unpack:2:0', { bytes: 5 });
    await short.untrack();
    expect(send.mock.calls.length).toBe(0);
    expect(emitter.trackedIds()).toEqual(['unpack:2:0']);

    const before = await serverTime(redis);
    send.mockClear();
    const first = await emitter.beatNow();
    expect(send.mock.calls.length).toBe(1);
    expect(first).toMatchObject({ beaten: 0, registered: 1, removed: 0, lost: [] });
    expect(Number(await redis.zscore(keys.deadlines, 'unpack:2:0'))).toBeGreaterThanOrEqual(before + 1000);
    expect(JSON.parse((await redis.hget(keys.details, 'unpack:2:0'))!).registeredAt).toBeGreaterThanOrEqual(
      before,
    );
    expect(await redis.hget(keys.progress, 'unpack:2:0')).toMatch(/:\{"bytes":5\}$/);
    expect(await redis.zscore(keys.deadlines, 'unpack:1:0')).toBeNull();
    expect(await redis.hget(keys.details, 'unpack:1:0')).toBeNull();
    send.mockRestore();

    // Registered now: beaten like any other, and reported lost when its member goes.
    expect(await emitter.beatNow()).toMatchObject({ beaten: 1, registered: 0 });
    await redis.zrem(keys.deadlines, 'unpack:2:0');
    const lost = await emitter.beatNow();
    expect(lost.lost.map((l) => [l.taskId, l.reason])).toEqual([['unpack:2:0', 'missing']]);
    expect(long.signal.aborted).toBe(true);
    // A lost member registered again with `now`: in Redis before the call resolves, not a beat later.
    await emitter.track('unpack:2:0', { now: true });
    expect(Number(await redis.zscore(keys.deadlines, 'unpack:2:0'))).toBeGreaterThan(0);
    expect(await emitter.beatNow()).toMatchObject({ beaten: 1, registered: 0 });
    await expect(emitter.track('unpack:2:0', { now: 'yes' } as never)).rejects.toThrow(/now/);

    // Tracked again after a registration and ended before the next beat: the old member is removed.
    await emitter.track('unpack:3:0');
    await emitter.beatNow();
    await emitter.track('unpack:3:0');
    await emitter.untrack('unpack:3:0');
    expect(await emitter.beatNow()).toMatchObject({ registered: 0, removed: 1 });
    expect(await redis.zscore(keys.deadlines, 'unpack:3:0')).toBeNull();
    expect(await redis.hget(keys.details, 'unpack:3:0')).toBeNull();
  });

  it('with registerOnNextBeat an untrack removes a member written for the same id before, however the calls interleave', async () => {
    // Removal queued, the id tracked again in the same tick, untracked before its own registration.
    const plain = setup({ registerOnNextBeat: true, intervalMs: 100, timeoutMs: 1000 });
    await plain.emitter.track('unpack:1:0');
    await plain.emitter.beatNow();
    expect(await redis.zscore(plain.keys.deadlines, 'unpack:1:0')).not.toBeNull();
    const removal = plain.emitter.untrack('unpack:1:0');
    await plain.emitter.track('unpack:1:0');
    await removal;
    await plain.emitter.untrack('unpack:1:0');
    await plain.emitter.beatNow();
    expect(await redis.zscore(plain.keys.deadlines, 'unpack:1:0')).toBeNull();

    // Reported lost as expired (its member stays for the monitor), tracked again by its owner and
    // ended before the next beat: the old member goes.
    const deferred = setup({
      registerOnNextBeat: true,
      removeOnNextBeat: true,
      intervalMs: 100,
      timeoutMs: 1000,
    });
    await deferred.emitter.track('unpack:2:0');
    await deferred.emitter.beatNow();
    await redis.zadd(deferred.keys.deadlines, 'XX', 1, 'unpack:2:0');
    expect((await deferred.emitter.beatNow()).lost.map((l) => l.reason)).toEqual(['expired']);
    expect(await redis.zscore(deferred.keys.deadlines, 'unpack:2:0')).toBe('1');
    await deferred.emitter.track('unpack:2:0');
    await deferred.emitter.untrack('unpack:2:0');
    await deferred.emitter.beatNow();
    expect(await redis.zscore(deferred.keys.deadlines, 'unpack:2:0')).toBeNull();
  });

  it('with registerOnNextBeat a registration that could not be sent within its timeout is reported lost, not sent', async () => {
    const { emitter, keys } = setup({ registerOnNextBeat: true, intervalMs: 100, timeoutMs: 200 });
    const task = await emitter.track('archive:9:0');
    // No beat for longer than the timeout (beats failing, or the emitter not started): the
    // database reconciliation may have recovered it meanwhile, so its owner must check first.
    await new Promise((r) => setTimeout(r, 250));
    const report = await emitter.beatNow();
    expect(report.lost).toMatchObject([{ taskId: 'archive:9:0', reason: 'expired', serverTime: undefined }]);
    expect(task.signal.aborted).toBe(true);
    expect(emitter.trackedIds()).toEqual([]);
    expect(await redis.zscore(keys.deadlines, 'archive:9:0')).toBeNull();
  });

  it('with registerOnNextBeat a failed beat carries its registrations to the next one', async () => {
    const { emitter, keys } = setup({
      registerOnNextBeat: true,
      intervalMs: 100,
      timeoutMs: 1000,
      commandTimeoutMs: 100,
    });
    await emitter.track('archive:1:0');
    // The command never answers: the beat times out.
    const send = vi.spyOn(redis, 'sendCommand').mockImplementationOnce(() => new Promise<never>(() => {}));
    await expect(emitter.beatNow()).rejects.toThrow(/heartbeat beat: no answer from Redis/);
    send.mockRestore();
    expect(await redis.zscore(keys.deadlines, 'archive:1:0')).toBeNull();
    expect(await emitter.beatNow()).toMatchObject({ registered: 1 });
    expect(await redis.zscore(keys.deadlines, 'archive:1:0')).not.toBeNull();
  });

  it('beats for all its tasks in one Redis command per interval, and coalesces registrations', async () => {
    const { emitter, keys } = setup();
    const send = vi.spyOn(redis, 'sendCommand');
    await Promise.all(Array.from({ length: 300 }, (_, i) => emitter.track(`data_transfer:${i}:0`)));
    expect(send.mock.calls.length).toBe(1);
    expect(await redis.zcard(keys.deadlines)).toBe(300);
    send.mockClear();
    const report = await emitter.beatNow();
    expect(send.mock.calls.length).toBe(1);
    expect(report).toMatchObject({ beaten: 300, lost: [], failedBefore: 0 });
    expect(report.rttMs).toBeGreaterThan(0);
  });

  it('splits a big beat into several scripts sent in one pipeline', async () => {
    const { emitter, keys } = setup({ maxTasksPerScript: 40 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => emitter.track(`unpack:${i}:1`)));
    const before = await redis.zrange(keys.deadlines, 0, -1, 'WITHSCORES');
    const report = await emitter.beatNow();
    expect(report.beaten).toBe(100);
    const after = await redis.zrange(keys.deadlines, 0, -1, 'WITHSCORES');
    expect(after.length).toBe(before.length);
    expect(Number(after[1])).toBeGreaterThanOrEqual(Number(before[1]));
  });

  it('beats thousands of tasks with progress in one script (bulk commands in chunks)', async () => {
    const { emitter, keys } = setup({ timeoutMs: 60_000, progressTimeoutMs: 30_000 });
    const handles = await Promise.all(
      Array.from({ length: 2_500 }, (_, i) => emitter.track(`unpack:${i}:0`)),
    );
    const before = Number((await redis.zrange(keys.deadlines, 0, 0, 'WITHSCORES'))[1]);
    handles.forEach((h, i) => {
      if (i % 2 === 0) h.progress({ bytesDone: i });
    });
    const report = await emitter.beatNow();
    expect(report).toMatchObject({ beaten: 2_500, lost: [] });
    expect(Number((await redis.zrange(keys.deadlines, 0, 0, 'WITHSCORES'))[1])).toBeGreaterThanOrEqual(
      before,
    );
    const progress = await redis.hmget(
      keys.progress,
      'unpack:0:0',
      'unpack:1:0',
      'unpack:2498:0',
      'unpack:2499:0',
    );
    expect(progress.map((p) => p!.slice(p!.indexOf(':') + 1))).toEqual([
      '{"bytesDone":0}',
      'null',
      '{"bytesDone":2498}',
      'null',
    ]);
    expect(await redis.zcard(keys.progressDeadlines)).toBe(2_500);
  });

  it('honours a per-task timeout', async () => {
    const { emitter, scanner, keys } = setup({ timeoutMs: 10_000 });
    await emitter.track('deletion:1:0', { timeoutMs: 300 });
    await emitter.track('deletion:2:0');
    const short = Number(await redis.zscore(keys.deadlines, 'deletion:1:0'));
    const long = Number(await redis.zscore(keys.deadlines, 'deletion:2:0'));
    expect(long - short).toBeGreaterThanOrEqual(9_700 - 50);
    // Not started: nobody beats, as for a process that died.
    const found = await waitFor(async () => {
      const scan = await scanner.scanExpired();
      return scan.tasks.length > 0 ? scan : undefined;
    });
    expect(found.tasks.map((t) => t.taskId)).toEqual(['deletion:1:0']);
    expect(found.tasks[0]!.details?.timeoutMs).toBe(300);
  });

  it('rejects bad input at track with typed errors and writes nothing', async () => {
    const { emitter, keys } = setup();
    await expect(emitter.track('bad id')).rejects.toBeInstanceOf(InvalidTaskIdError);
    await expect(emitter.track('x'.repeat(300))).rejects.toBeInstanceOf(InvalidTaskIdError);
    await expect(emitter.track('ok:1:0', { timeoutMs: 60 })).rejects.toMatchObject({
      code: 'INVALID_TRACK_OPTIONS',
    });
    await expect(emitter.track('ok:1:0', { progress: 10n as unknown as number })).rejects.toBeInstanceOf(
      ValidationError,
    );
    await expect(emitter.track('ok:1:0', { colour: 'red' } as never)).rejects.toThrow(/track\.colour/);
    expect(await redis.exists(keys.deadlines)).toBe(0);
    await emitter.track('ok:1:0');
    expect(() => emitter.progress('ok:1:0', 'x'.repeat(2_000))).toThrow(ValidationError);
    expect(emitter.progress('unknown:1:0', 1)).toBe(false);
  });

  it('is unaffected by a worker clock an hour off (Redis time only)', async () => {
    const { emitter, scanner, keys } = setup({ timeoutMs: 1_000 });
    const realNow = Date.now.bind(Date);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
    await emitter.start();
    const t0 = await serverTime(redis);
    await emitter.track('long_term_archive_transfer:7:0', { progressTimeoutMs: 500 });
    const deadline = Number(await redis.zscore(keys.deadlines, 'long_term_archive_transfer:7:0'));
    expect(Math.abs(deadline - (t0 + 1_000))).toBeLessThan(200);
    const next = await scanner.nextDeadline();
    expect(next!.inMs).toBeLessThanOrEqual(1_000);
    expect(next!.inMs).toBeGreaterThan(300);
    // An hour ahead, then an hour behind: it keeps beating, nothing expires, nothing is lost.
    await waitFor(() => emitter.stats().beats >= 4);
    vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
    const beats = emitter.stats().beats;
    await waitFor(() => emitter.stats().beats >= beats + 4);
    expect((await scanner.scanExpired()).tasks).toEqual([]);
    expect(emitter.stats().lost).toBe(0);
    const listed = await scanner.list();
    expect(listed.tasks[0]!.heartbeatAgeMs).toBeLessThan(1_000);
  });

  it('close is idempotent, bounded, keeps unfinished members, and refuses new tasks', async () => {
    const { emitter, keys } = setup();
    await emitter.start();
    await emitter.track('data_transfer_package:3:2');
    const a = emitter.close();
    const b = emitter.close();
    expect(a).toBe(b);
    const started = performance.now();
    await a;
    expect(performance.now() - started).toBeLessThan(1_000);
    await emitter[Symbol.asyncDispose]();
    expect(await redis.zscore(keys.deadlines, 'data_transfer_package:3:2')).not.toBeNull();
    await expect(emitter.track('data_transfer_package:4:0')).rejects.toBeInstanceOf(HeartbeatClosedError);
    await expect(emitter.start()).rejects.toBeInstanceOf(HeartbeatClosedError);
  });

  it('a throwing hook never breaks the beat', async () => {
    const { emitter } = setup({
      onBeat: () => {
        throw new Error('metrics exporter broke');
      },
    });
    await emitter.track('raw_data_package:9:0');
    await emitter.start();
    await waitFor(() => emitter.stats().beats >= 3);
    expect(emitter.stats().beatFailures).toBe(0);
  });
});
