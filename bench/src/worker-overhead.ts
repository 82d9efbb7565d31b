// bench/worker-overhead: what the recovery machinery costs per job, at the same concurrency.
//  ours:     no-op operations through the whole path: dispatch (pending → scheduled + job), claim
//            (fenced), heartbeat track/untrack, complete (fenced, with its event row).
//  naive:    a BullMQ worker doing the same two status writes by primary key, no fencing, no
//            heartbeats, no events; jobs added the same way.
//  raw:      BullMQ no-op jobs, for scale.
import { OPERATION_TYPES, type OperationType } from '@ccat/db';
import { migratedDatabase } from '@ccat/db/testing';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import { createHandlerRegistry, recoveryPolicySchema } from '@ccat/recovery-handlers';
import {
  connectTestRedis,
  createTestSchema,
  deleteKeysWithPrefix,
  testRedisUrl,
  uniquePrefix,
} from '@ccat/test-support';
import {
  createFaultInjector,
  createLocalCopyTransport,
  createWorkerMetrics,
  Dispatcher,
  TaskRunner,
  workerConfigSchema,
  type Operation,
} from '@ccat/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { heading, ratio, report } from './stats.js';

const JOBS = Number(process.env['BENCH_JOBS'] ?? 3000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
const ROUNDS = 2;

async function main(): Promise<void> {
  const schema = await createTestSchema('bench_worker');
  const database = await migratedDatabase({ url: schema.url, schema: schema.schema, max: 20 });
  const db = database.db;
  const redis = await connectTestRedis();
  const bull = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  const prefix = uniquePrefix('bench_worker');
  const logger = pino({ level: process.env['BENCH_LOG'] ?? 'silent' });
  try {
    const site = await db
      .insertInto('sites')
      .values({ name: 'cha', short_name: 'cha' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const loc = await db
      .insertInto('data_locations')
      .values({ site_id: site.id, name: 'src', location_type: 'source', root_path: '/nonexistent' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const seed = async (tag: string) => {
      await sql`INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path)
        SELECT ${tag} || '-' || g, ${loc.id}, ${loc.id}, 'x' FROM generate_series(1, ${JOBS}) g`.execute(db);
    };
    const waitCompleted = async (target: number) => {
      for (;;) {
        const r = await db
          .selectFrom('raw_data_packages')
          .select((eb) => eb.fn.countAll<string>().as('n'))
          .where('status', '=', 'completed')
          .executeTakeFirstOrThrow();
        if (Number(r.n) >= target) return;
        await new Promise((res) => setTimeout(res, 5));
      }
    };

    const config = workerConfigSchema.parse({
      keyPrefix: prefix,
      heartbeat: { intervalMs: 1000, timeoutMs: 60_000, progressTimeoutMs: 60_000 },
    });
    const heartbeat = new HeartbeatEmitter({
      redis,
      keyPrefix: prefix,
      intervalMs: 1000,
      timeoutMs: 60_000,
      workerId: 'bench',
      logger,
      // As the worker app runs it: a finished task's removal rides on the next beat.
      removeOnNextBeat: true,
    });
    await heartbeat.start();
    const noop: Operation = { run: () => Promise.resolve({ bytes: 0 }) };
    const operations = Object.fromEntries(OPERATION_TYPES.map((t) => [t, noop])) as Record<
      OperationType,
      Operation
    >;
    const runner = new TaskRunner({
      db,
      heartbeat,
      recovery: { db, registry: createHandlerRegistry(), policy: recoveryPolicySchema.parse({}), logger },
      logger,
      workerId: 'bench',
      transport: createLocalCopyTransport(),
      faults: createFaultInjector({ enabled: false, seed: '', rules: [] }, logger, () => undefined),
      metrics: createWorkerMetrics(),
      config,
      operations,
    });
    const dispatcher = new Dispatcher(
      { db, connection: bull, bullPrefix: `${prefix}bull`, logger },
      {
        intervalMs: 60_000,
        batchSize: 10_000,
        scheduleTimeoutMs: 3_600_000,
        bundleSize: 1_000_000,
        bundleMaxWaitMs: 86_400_000,
        operationTypes: ['raw_data_package'],
      },
    );

    let completed = 0;
    const runOurs = async () => {
      await seed(`ours-${completed}`);
      const start = performance.now();
      const w = new Worker('cha_src_raw_data_package', (job) => runner.run(job.data, job.id, job.queueName), {
        connection: bull,
        prefix: `${prefix}bull`,
        concurrency: CONCURRENCY,
        maxStalledCount: 0,
      });
      await dispatcher.runOnce();
      completed += JOBS;
      await waitCompleted(completed);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    const naiveQueue = new Queue('naive', { connection: bull, prefix: `${prefix}bull` });
    const runNaive = async () => {
      await seed(`naive-${completed}`);
      const start = performance.now();
      const w = new Worker(
        'naive',
        async (job) => {
          const id = (job.data as { id: string }).id;
          await sql`UPDATE raw_data_packages SET status = 'in_progress', claimed_by = 'naive', started_at = now(), updated_at = now() WHERE id = ${id}`.execute(
            db,
          );
          await sql`UPDATE raw_data_packages SET status = 'completed', finished_at = now(), updated_at = now() WHERE id = ${id}`.execute(
            db,
          );
        },
        { connection: bull, prefix: `${prefix}bull`, concurrency: CONCURRENCY, maxStalledCount: 0 },
      );
      const pending = await db
        .selectFrom('raw_data_packages')
        .select('id')
        .where('status', '=', 'pending')
        .execute();
      await sql`UPDATE raw_data_packages SET status = 'scheduled' WHERE status = 'pending'`.execute(db);
      await naiveQueue.addBulk(
        pending.map((p) => ({
          name: 'x',
          data: { id: p.id },
          opts: { jobId: `n:${p.id}:0`, removeOnComplete: true, attempts: 1 },
        })),
      );
      completed += JOBS;
      await waitCompleted(completed);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    const rawQueue = new Queue('raw', { connection: bull, prefix: `${prefix}bull` });
    const runRaw = async () => {
      const start = performance.now();
      let done = 0;
      const finished = new Promise<void>((resolve) => {
        const w = new Worker(
          'raw',
          () => {
            if (++done === JOBS) setImmediate(() => void w.close().then(resolve));
            return Promise.resolve();
          },
          { connection: bull, prefix: `${prefix}bull`, concurrency: CONCURRENCY, maxStalledCount: 0 },
        );
      });
      await rawQueue.addBulk(
        Array.from({ length: JOBS }, (_, i) => ({
          name: 'x',
          data: { i },
          opts: { removeOnComplete: true },
        })),
      );
      await finished;
      return performance.now() - start;
    };

    heading(
      `worker overhead: ${JOBS.toLocaleString('en-US')} no-op jobs per run, concurrency ${CONCURRENCY}, ${ROUNDS} alternating rounds`,
    );
    // Warm-up, then alternate so both share the machine's noise.
    await runOurs();
    await runNaive();
    let ours = 0;
    let naive = 0;
    let raw = 0;
    for (let i = 0; i < ROUNDS; i++) {
      naive += await runNaive();
      ours += await runOurs();
      raw += await runRaw();
    }
    const oursRate = report(
      'ours: dispatch + fenced claim + heartbeat + fenced complete + event',
      (ROUNDS * JOBS) / (ours / 1000),
      'jobs/s',
    );
    const naiveRate = report(
      'naive: BullMQ + two plain UPDATEs by primary key',
      (ROUNDS * JOBS) / (naive / 1000),
      'jobs/s',
    );
    report('raw BullMQ no-op jobs, for scale', (ROUNDS * JOBS) / (raw / 1000), 'jobs/s');
    ratio('ours / naive', oursRate, naiveRate, '>= 0.8');
    const events = await db
      .selectFrom('operation_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('event', '=', 'completed')
      .executeTakeFirstOrThrow();
    console.log(`  (check: ${events.n} completion events written by our path, one per job)`);
    await dispatcher.close();
    await heartbeat.close();
    await naiveQueue.close();
    await rawQueue.close();
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    bull.disconnect();
    await database.close();
    await schema.drop();
  }
}

await main();
