import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { heartbeatKeys, HeartbeatScanner, type HeartbeatKeys } from '../src/index.js';
import { captureLogger, serverTime } from './support.js';

const prefix = uniquePrefix('hb_corrupt');
let redis: Redis;
let n = 0;

function setup(batchSize = 1_000) {
  const keyPrefix = `${prefix}${++n}:`;
  const log = captureLogger();
  const scanner = new HeartbeatScanner({ redis, keyPrefix, batchSize, logger: log.logger });
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
});
