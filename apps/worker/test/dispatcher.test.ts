import { readOperation, type CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  type SeededLocations,
  seedRawPackages,
  seedSites,
  type TestDatabase,
} from '@ccat/db/testing';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@ccat/test-support';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher } from '../src/dispatcher.js';

let schema: TestDatabase;
let database: CcatDatabase;
let redis: Redis;
let bull: Redis;
let root: string;
let locations: SeededLocations;
const prefix = uniquePrefix('dispatcher');
const QUEUE = 'cha_primecam-raw_raw_data_package';

beforeAll(async () => {
  schema = await createTestDatabase('dispatcher');
  database = schema.database;
  redis = await connectTestRedis();
  bull = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  root = await mkdtemp(join(tmpdir(), 'ccat-dispatch-'));
  locations = await seedSites(database.db, root);
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis?.disconnect();
  bull?.disconnect();
  await schema?.close();
  await rm(root, { recursive: true, force: true });
});

let seeded = 0;
const seed = (packages: number) =>
  seedRawPackages(database.db, locations, {
    packages,
    filesPerPackage: 1,
    minFileBytes: 1,
    maxFileBytes: 10,
    source: 'cha/primecam-raw',
    buffer: 'cha/cha-buffer',
    prefix: `d${++seeded}`,
  });

const dispatcher = (scheduleTimeoutMs = 60_000, bundleSize = 2) =>
  new Dispatcher(
    { db: database.db, connection: bull, bullPrefix: `${prefix}bull`, logger: pino({ level: 'silent' }) },
    {
      intervalMs: 1000,
      batchSize: 100,
      scheduleTimeoutMs,
      bundleSize,
      bundleMaxWaitMs: 3_600_000,
      operationTypes: ['raw_data_package'],
    },
  );

describe('the dispatcher', () => {
  it('turns due pending rows into scheduled rows and jobs with deterministic ids', async () => {
    const ids = await seed(3);
    const d = dispatcher();
    expect(await d.runOnce()).toMatchObject({ dispatched: 3 });
    for (const id of ids) {
      expect(await readOperation(database.db, 'raw_data_package', id)).toMatchObject({
        status: 'scheduled',
        attempt: 0,
      });
      const job = await d.queue(QUEUE).getJob(`raw_data_package:${id}:0`);
      expect(job?.data).toEqual({ operationType: 'raw_data_package', operationId: id, attempt: 0 });
      expect(job?.opts.attempts).toBe(1);
    }
    expect(await d.runOnce()).toMatchObject({ dispatched: 0, redispatched: 0 });
    await d.close();
    await d.close();
  });

  it('re-creates the jobs of scheduled rows after Redis lost them, with the same ids, once', async () => {
    const d = dispatcher(50);
    const before = await database.db
      .selectFrom('raw_data_packages')
      .select(['id', 'attempt'])
      .where('status', '=', 'scheduled')
      .execute();
    expect(before.length).toBeGreaterThan(0);
    // Redis loses everything under our prefix (a flush, without touching other tests' keys).
    await deleteKeysWithPrefix(redis, `${prefix}bull`);
    await new Promise((r) => setTimeout(r, 100));
    expect(await d.runOnce()).toMatchObject({ redispatched: before.length });
    for (const r of before)
      expect(await d.queue(QUEUE).getJob(`raw_data_package:${r.id}:${r.attempt}`)).toBeDefined();
    const events = await database.db
      .selectFrom('operation_events')
      .select('event')
      .where('event', '=', 'redispatched')
      .execute();
    expect(events).toHaveLength(before.length);
    await new Promise((r) => setTimeout(r, 100));
    expect(await d.runOnce()).toMatchObject({ redispatched: 0 });
    await d.close();
  });

  it('re-creates a job that failed in BullMQ before any worker claimed it (its worker died)', async () => {
    const d = dispatcher(50);
    const scheduled = await database.db
      .selectFrom('raw_data_packages')
      .select(['id', 'attempt'])
      .where('status', '=', 'scheduled')
      .execute();
    // A worker that takes the jobs and fails them without claiming: what BullMQ's stall check does to a dead worker's job.
    const failer = new Worker(QUEUE, () => Promise.reject(new Error('died before claiming')), {
      connection: bull,
      prefix: `${prefix}bull`,
      maxStalledCount: 0,
    });
    const q = d.queue(QUEUE);
    await waitFor(async () => (await q.getFailedCount()) >= scheduled.length, { message: 'jobs failed' });
    await failer.close();
    await new Promise((r) => setTimeout(r, 100));
    expect(await d.runOnce()).toMatchObject({ redispatched: scheduled.length });
    for (const r of scheduled)
      expect(await (await q.getJob(`raw_data_package:${r.id}:${r.attempt}`))?.getState()).toBe('waiting');
    await d.close();
  });

  it('two dispatchers at once: each row scheduled once, each raw package bundled once', async () => {
    await sql`UPDATE raw_data_packages SET status = 'completed', finished_at = now()`.execute(database.db);
    const fresh = await seed(40);
    await sql`UPDATE raw_data_packages SET status = 'completed', finished_at = now() WHERE id = ANY(${fresh.slice(0, 20)}::bigint[])`.execute(
      database.db,
    );
    const [a, b] = [dispatcher(), dispatcher()];
    const [ra, rb] = await Promise.all([a.runOnce(), b.runOnce()]);
    expect(ra.dispatched + rb.dispatched).toBe(20);
    const bundles = await database.db
      .selectFrom('raw_data_packages')
      .select(['data_transfer_package_id'])
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('data_transfer_package_id', 'is not', null)
      .groupBy('data_transfer_package_id')
      .execute();
    // 3 + 20 completed packages in bundles of 2: 11 full bundles, one left waiting for company.
    expect(bundles.map((x) => x.n)).toEqual(Array.from({ length: 11 }, () => '2'));
    expect(ra.bundled + rb.bundled).toBe(11);
    await Promise.all([a.close(), b.close()]);
    const q = new Queue(QUEUE, { connection: bull, prefix: `${prefix}bull` });
    expect(await q.getWaitingCount()).toBeGreaterThanOrEqual(20);
    await q.close();
  });
});
