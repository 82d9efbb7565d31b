import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix, captureLogs } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatKeys, HeartbeatScanner, type HeartbeatKeys } from '../src/index.js';
import { serverTime } from './support.js';

const prefix = uniquePrefix('hb_corrupt');
let redis: Redis;
let n = 0;

function setup(batchSize = 1_000, maxDeadlineAheadMs?: number) {
  const keyPrefix = `${prefix}${++n}:`;
  const log = captureLogs();
  const scanner = new HeartbeatScanner({
    redis,
    keyPrefix,
    batchSize,
    logger: log.logger,
    ...(maxDeadlineAheadMs !== undefined && { maxDeadlineAheadMs }),
  });
  return { scanner, log, keys: heartbeatKeys({ keyPrefix }) };
}

const goodDetails = (t: number) => JSON.stringify({ registeredAt: t, emitterId: 'w:1', timeoutMs: 1000 });

async function plant(keys: HeartbeatKeys, past: number) {
  await redis
    .multi()
    // members that cannot be task ids
    .zadd(keys.deadlines, past, 'has spaces in it')
    .zadd(keys.deadlines, past, Buffer.from([0x66, 0xff, 0xfe, 0x3a, 0x31]))
    // a valid id with an impossible score
    .zadd(keys.deadlines, '-inf', 'raw_data_package:1:0')
    // valid ids whose details are missing, not JSON, or not our shape; one with unreadable progress
    .zadd(keys.deadlines, past, 'raw_data_package:2:0')
    .zadd(keys.deadlines, past, 'raw_data_package:3:0')
    .hset(keys.details, 'raw_data_package:3:0', '{not json')
    .zadd(keys.deadlines, past, 'raw_data_package:4:0')
    .hset(keys.details, 'raw_data_package:4:0', '{"hello":"world"}')
    .zadd(keys.deadlines, past, 'raw_data_package:5:0')
    .hset(keys.details, 'raw_data_package:5:0', goodDetails(past))
    .hset(keys.progress, 'raw_data_package:5:0', 'garbage')
    // a healthy expired one
    .zadd(keys.deadlines, past, 'raw_data_package:6:0')
    .hset(keys.details, 'raw_data_package:6:0', goodDetails(past))
    .hset(keys.progress, 'raw_data_package:6:0', `${past}:{"bytesDone":1}`)
    // a progress entry without a heartbeat member
    .zadd(keys.progressDeadlines, past, 'orphan:1:0')
    .exec();
}

beforeAll(async () => {
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  await redis.quit();
});

describe('corrupt entries', () => {
  it('are reported, logged, counted and kept (quarantined or still recoverable), never thrown', async () => {
    const { scanner, log, keys } = setup();
    const past = (await serverTime(redis)) - 10_000;
    await plant(keys, past);

    const scan = await scanner.scanExpired();
    const byReason = (r: string) => scan.corrupt.filter((c) => c.reason === r).map((c) => c.taskId);
    expect(byReason('invalid-member')).toHaveLength(2);
    expect(byReason('invalid-member')).toContain('has spaces in it');
    expect(byReason('invalid-score')).toEqual(['raw_data_package:1:0']);
    expect(byReason('details-missing')).toEqual(['raw_data_package:2:0']);
    expect(byReason('details-malformed').sort()).toEqual(['raw_data_package:3:0', 'raw_data_package:4:0']);
    expect(byReason('progress-malformed')).toEqual(['raw_data_package:5:0']);
    expect(scan.corrupt.filter((c) => c.quarantined)).toHaveLength(3);

    // Valid ids are still reported as expired, so the monitor recovers them; the details are just missing.
    expect(scan.tasks.map((t) => t.taskId).sort()).toEqual([
      'raw_data_package:2:0',
      'raw_data_package:3:0',
      'raw_data_package:4:0',
      'raw_data_package:5:0',
      'raw_data_package:6:0',
    ]);
    expect(scan.tasks.find((t) => t.taskId === 'raw_data_package:3:0')!.details).toBeUndefined();
    expect(scan.tasks.find((t) => t.taskId === 'raw_data_package:6:0')!.progress?.value).toEqual({
      bytesDone: 1,
    });

    const stalled = await scanner.scanStalled();
    expect(stalled.corrupt).toEqual([
      expect.objectContaining({ taskId: 'orphan:1:0', reason: 'orphan-progress', quarantined: true }),
    ]);

    // Quarantined entries are listed with what was stored for them, not silently dropped.
    const q = await scanner.listCorrupt();
    expect(q.map((e) => e.reason).sort()).toEqual([
      'invalid-member',
      'invalid-member',
      'invalid-score',
      'orphan-progress',
    ]);
    expect(q.find((e) => e.member === 'raw_data_package:1:0')).toMatchObject({ deadline: '-inf' });
    expect(await scanner.counts()).toMatchObject({ corrupt: 4, inFlight: 5 });
    expect(scanner.stats().corruptFound).toBe(scan.corrupt.length + 1);
    expect(scanner.stats().quarantined).toBe(4);
    expect(log.lines.filter((l) => l['msg'] === 'corrupt heartbeat entry')).toHaveLength(
      scan.corrupt.length + 1,
    );

    // The listing flags the rest.
    const listed = await scanner.list();
    expect(listed.tasks.find((t) => t.taskId === 'raw_data_package:4:0')!.corrupt).toBe('details-malformed');

    // After recovery they go like any other; the quarantine is purged by an admin.
    expect((await scanner.remove(scan.tasks)).removed).toHaveLength(5);
    expect(await scanner.purgeCorrupt(['has spaces in it'])).toBe(1);
    expect(await scanner.purgeCorrupt()).toBe(3);
    expect(await scanner.counts()).toMatchObject({ corrupt: 0, inFlight: 0 });
  });

  it('cannot block the head of the range, however many there are', async () => {
    const { scanner, keys } = setup(5);
    const past = (await serverTime(redis)) - 10_000;
    const m = redis.multi();
    for (let i = 0; i < 12; i++) m.zadd(keys.deadlines, past - 100 + i, `bad member ${i}`);
    m.zadd(keys.deadlines, past, 'deletion:1:0').hset(keys.details, 'deletion:1:0', goodDetails(past));
    await m.exec();
    const found: string[] = [];
    for (let pass = 0; pass < 10 && found.length === 0; pass++) {
      found.push(...(await scanner.scanExpired()).tasks.map((t) => t.taskId));
    }
    expect(found).toEqual(['deletion:1:0']);
    expect((await scanner.listCorrupt()).length).toBe(12);
  });

  describe('poison entries (issue 12 item 4)', () => {
    const details = (past: number, extra: Record<string, unknown>) =>
      JSON.stringify({ registeredAt: past, emitterId: 'w:1', timeoutMs: 1000, ...extra });

    it('details with a NUL, a lone surrogate, an over-long field or a non-finite number are malformed: the task is still reported, without them', async () => {
      const { scanner, keys } = setup();
      const past = (await serverTime(redis)) - 10_000;
      const poison: Record<string, string> = {
        'raw_data_package:11:0': details(past, { workerId: 'bad\u0000id' }),
        'raw_data_package:12:0': details(past, { workerId: '\ud800' }),
        'raw_data_package:13:0': details(past, { host: 'h'.repeat(100_000) }),
        'raw_data_package:14:0': details(past, { attributes: { note: 'x\udc00y' } }),
        'raw_data_package:15:0': details(past, { queue: 'q' }).replace(
          '"timeoutMs":1000',
          '"timeoutMs":1e999',
        ),
      };
      const m = redis.multi();
      for (const [id, raw] of Object.entries(poison))
        m.zadd(keys.deadlines, past, id).hset(keys.details, id, raw);
      // A good one with a surrogate pair (an emoji) is fine; its progress holds a NUL: malformed.
      m.zadd(keys.deadlines, past, 'raw_data_package:16:0')
        .hset(keys.details, 'raw_data_package:16:0', details(past, { workerId: 'w-\u{1F600}' }))
        .hset(keys.progress, 'raw_data_package:16:0', `${past}:${JSON.stringify({ file: 'a\u0000b' })}`);
      await m.exec();

      const scan = await scanner.scanExpired();
      expect(scan.tasks.map((t) => t.taskId).sort()).toEqual(
        [...Object.keys(poison), 'raw_data_package:16:0'].sort(),
      );
      for (const id of Object.keys(poison)) {
        expect(scan.tasks.find((t) => t.taskId === id)!.details).toBeUndefined();
        expect(scan.corrupt).toContainEqual(
          expect.objectContaining({ taskId: id, reason: 'details-malformed' }),
        );
      }
      const good = scan.tasks.find((t) => t.taskId === 'raw_data_package:16:0')!;
      expect(good.details?.workerId).toBe('w-\u{1F600}');
      expect(good.progress).toBeUndefined();
      expect(scan.corrupt).toContainEqual(
        expect.objectContaining({ taskId: 'raw_data_package:16:0', reason: 'progress-malformed' }),
      );
    });

    it('members scored +inf or 1e15 are quarantined as soon as a scan runs; an absurd progress deadline alone loses only its watch', async () => {
      const { scanner, keys } = setup(1_000, 3_600_000 + 60_000);
      const now = await serverTime(redis);
      const ok = details(now, {});
      await redis
        .multi()
        .zadd(keys.deadlines, '+inf', 'raw_data_package:21:0')
        .hset(keys.details, 'raw_data_package:21:0', ok)
        .zadd(keys.deadlines, 1e15, 'raw_data_package:22:0')
        .hset(keys.details, 'raw_data_package:22:0', ok)
        // a member with a sane deadline whose progress deadline is absurd
        .zadd(keys.deadlines, now + 60_000, 'raw_data_package:23:0')
        .zadd(keys.progressDeadlines, 1e15, 'raw_data_package:23:0')
        // a long but sane deadline stays
        .zadd(keys.deadlines, now + 3_600_000, 'raw_data_package:24:0')
        .exec();

      const expired = await scanner.scanExpired();
      expect(expired.tasks).toEqual([]);
      expect(expired.corrupt).toEqual([
        expect.objectContaining({
          taskId: 'raw_data_package:22:0',
          reason: 'absurd-score',
          quarantined: true,
        }),
        expect.objectContaining({
          taskId: 'raw_data_package:21:0',
          reason: 'invalid-score',
          quarantined: true,
        }),
      ]);
      const stalled = await scanner.scanStalled();
      expect(stalled.corrupt).toEqual([
        expect.objectContaining({
          taskId: 'raw_data_package:23:0',
          reason: 'absurd-score',
          quarantined: true,
        }),
      ]);
      // No longer members: reconciliation sees their rows as having no heartbeat. The member with a
      // sane deadline keeps it (its liveness still bounds it; it may be a live task tracked with a
      // longer progress bound than this scanner's): only its progress watch went.
      expect(await redis.zrange(keys.deadlines, 0, -1)).toEqual([
        'raw_data_package:23:0',
        'raw_data_package:24:0',
      ]);
      expect(await redis.zcard(keys.progressDeadlines)).toBe(0);
      const q = await scanner.listCorrupt();
      expect(q.map((e) => e.member).sort()).toEqual([
        'raw_data_package:21:0',
        'raw_data_package:22:0',
        'raw_data_package:23:0',
      ]);
      expect(q.find((e) => e.member === 'raw_data_package:21:0')).toMatchObject({ deadline: 'inf' });
    });

    it('nextDeadline passes over the members it is told to skip', async () => {
      const { scanner, keys } = setup();
      const now = await serverTime(redis);
      await redis.zadd(keys.deadlines, now - 1000, 'unpack:1:0', now + 5000, 'unpack:2:0');
      expect((await scanner.nextDeadline())?.inMs).toBe(0);
      const next = await scanner.nextDeadline(new Set(['unpack:1:0']));
      expect(next?.inMs).toBeGreaterThan(3000);
      expect(await scanner.nextDeadline(new Set(['unpack:1:0', 'unpack:2:0']))).toBeUndefined();
    });
  });
});

describe('heartbeat keys of the wrong type', () => {
  const cases: [string, (k: HeartbeatKeys) => string][] = [
    ['deadlines', (k) => k.deadlines],
    ['progress deadlines', (k) => k.progressDeadlines],
    ['details', (k) => k.details],
    ['progress', (k) => k.progress],
    ['corrupt', (k) => k.corrupt],
  ];
  for (const [name, key] of cases) {
    it(`a ${name} key holding a string is moved aside after one failed scan, and scans work again`, async () => {
      const { scanner, log, keys } = setup();
      const past = (await serverTime(redis)) - 1000;
      await redis
        .multi()
        .zadd(keys.deadlines, past, 'unpack:1:0')
        .zadd(keys.deadlines, past, 'not a task id')
        .hset(keys.details, 'unpack:1:0', goodDetails(past))
        .zadd(keys.progressDeadlines, past, 'unpack:1:0')
        .exec();
      await redis.del(key(keys));
      await redis.set(key(keys), 'garbage');
      // Both scans touch every key (the invalid member makes the expired scan write the corrupt hash).
      const scans = async () => {
        await scanner.scanExpired();
        await scanner.scanStalled();
      };
      await expect(scans()).rejects.toThrow(/WRONGTYPE/);
      await expect(scans()).resolves.toBeUndefined();
      const moved = log.lines.filter((l) =>
        l['msg']?.toString().startsWith('heartbeat key of the wrong type'),
      );
      expect(moved).toHaveLength(1);
      expect(moved[0]).toMatchObject({ level: 50, key: key(keys), foundType: 'string' });
      expect(await redis.get(String(moved[0]!['movedTo']))).toBe('garbage');
      expect(await scanner.setAsideWrongTypes()).toEqual([]);
    });
  }
});
