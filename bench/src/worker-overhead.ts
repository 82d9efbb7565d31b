// bench/worker-overhead: what the recovery machinery costs per job, at the same concurrency.
//  ours:     no-op operations through the whole path: dispatch (pending → scheduled + job), claim
//            (fenced), heartbeat track/untrack, complete (fenced, with its event row), as the worker
//            runs them by default: claims and completions of concurrent tasks share statements.
//            The heartbeat registration rides on the next beat (heartbeat.registerOnNextBeat).
//  atClaim:  the same with the heartbeat registered at the claim (one Redis round trip per task).
//  single:   the same with every claim and completion its own statement (transitions.maxBatch 1).
//  naive:    a BullMQ worker doing the same two status writes by primary key, no fencing, no
//            heartbeats, no events; jobs added the same way.
//  raw:      BullMQ no-op jobs, for scale.
import { OPERATION_TYPES, queueName, type OperationType } from '@ccat/db';
import { createTestDatabase } from '@ccat/db/testing';
import type { HeartbeatEmitter } from '@ccat/heartbeat';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import type { Operation, TaskRunner } from '@ccat/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { benchDispatcher, benchEmitter, benchRunner, Completions } from './bench-worker.js';
import { CpuMeter, type CpuSample } from './cpu.js';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, ratio, report } from './stats.js';

const JOBS = Number(process.env['BENCH_JOBS'] ?? 3000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
const ROUNDS = 2;

async function main(): Promise<void> {
  const schema = await createTestDatabase('bench_worker', {
    max: 20,
    preparedStatements: preparedStatements(),
    locations: true,
  });
  const database = schema.database;
  const db = database.db;
  const redis = await connectTestRedis();
  const bull = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  const prefix = uniquePrefix('bench_worker');
  const logger = pino({ level: process.env['BENCH_LOG'] ?? 'silent' });
  try {
    const loc = schema.locations.source;
    const seed = async (tag: string) => {
      await sql`INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path)
        SELECT ${tag} || '-' || g, ${loc}, ${loc}, 'x' FROM generate_series(1, ${JOBS}) g`.execute(db);
    };
    // Completions are counted where they happen; the database is checked at the end.
    const completions = new Completions();

    const emitters = [
      benchEmitter(redis, prefix, logger),
      benchEmitter(redis, prefix, logger, false),
    ] as const;
    for (const e of emitters) await e.start();
    const noop: Operation = { run: () => Promise.resolve({ bytes: 0 }) };
    const operations = Object.fromEntries(OPERATION_TYPES.map((t) => [t, noop])) as Record<
      OperationType,
      Operation
    >;
    const runnerWith = (heartbeat: HeartbeatEmitter, transitions: { maxBatch: number }) =>
      benchRunner({ db, heartbeat, logger, keyPrefix: prefix, transitions, operations });
    // The worker's defaults; the same with the heartbeat registered at the claim (one Redis round
    // trip per task); and with every claim and completion its own statement.
    const defaults = runnerWith(emitters[0], { maxBatch: 100 });
    const registerAtClaim = runnerWith(emitters[1], { maxBatch: 100 });
    const single = runnerWith(emitters[0], { maxBatch: 1 });
    const dispatcher = benchDispatcher({ db, connection: bull, bullPrefix: `${prefix}bull`, logger }, [
      'raw_data_package',
    ]);

    let runs = 0;
    const ours = (runner: TaskRunner) => async () => {
      await seed(`ours-${runs++}`);
      const target = completions.count + JOBS;
      const start = performance.now();
      const w = new Worker(
        queueName('cha', 'primecam-raw', 'raw_data_package'),
        async (job) => {
          const outcome = await runner.run(job.data, job.id, job.queueName);
          if (outcome === 'completed') completions.done();
        },
        { connection: bull, prefix: `${prefix}bull`, concurrency: CONCURRENCY, maxStalledCount: 0 },
      );
      await dispatcher.runOnce();
      await completions.until(target);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    const naiveQueue = new Queue('naive', { connection: bull, prefix: `${prefix}bull` });
    const naive = async () => {
      await seed(`naive-${runs++}`);
      const target = completions.count + JOBS;
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
          completions.done();
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
      await completions.until(target);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    const rawQueue = new Queue('raw', { connection: bull, prefix: `${prefix}bull` });
    const raw = async () => {
      const start = performance.now();
      let done = 0;
      const finishedRaw = new Promise<void>((resolve) => {
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
      await finishedRaw;
      return performance.now() - start;
    };

    heading(
      `worker overhead: ${JOBS.toLocaleString('en-US')} no-op jobs per run, concurrency ${CONCURRENCY}, ${ROUNDS} alternating rounds`,
    );
    console.log(describePrepared());
    const variants = {
      ours: {
        label: 'ours: dispatch + fenced claim + heartbeat + fenced complete + event',
        run: ours(defaults),
      },
      atClaim: { label: 'ours, heartbeat registered at the claim', run: ours(registerAtClaim) },
      single: { label: 'ours, every claim and completion its own statement', run: ours(single) },
      naive: { label: 'naive: BullMQ + two plain UPDATEs by primary key', run: naive },
      raw: { label: 'raw BullMQ no-op jobs, for scale', run: raw },
    };
    const cpu = new CpuMeter(redis);
    const totals = new Map<keyof typeof variants, { ms: number; cpu: CpuSample }>();
    // Warm-up, then alternate so all share the machine's noise.
    await variants.ours.run();
    await variants.naive.run();
    for (let i = 0; i < ROUNDS; i++) {
      for (const key of ['naive', 'ours', 'atClaim', 'single', 'raw'] as const) {
        const before = await cpu.sample();
        const ms = await variants[key].run();
        const used = CpuMeter.diff(before, await cpu.sample());
        const t = totals.get(key) ?? { ms: 0, cpu: { node: 0, redis: 0, postgres: 0 } };
        totals.set(key, { ms: t.ms + ms, cpu: CpuMeter.add(t.cpu, used) });
      }
    }
    const rate = (key: keyof typeof variants) =>
      report(variants[key].label, (ROUNDS * JOBS) / (totals.get(key)!.ms / 1000), 'jobs/s');
    const oursRate = rate('ours');
    const atClaimRate = rate('atClaim');
    const singleRate = rate('single');
    const naiveRate = rate('naive');
    rate('raw');
    ratio('ours / naive', oursRate, naiveRate, '>= 0.8');
    ratio('ours, heartbeat registered at the claim / naive', atClaimRate, naiveRate);
    ratio('ours without group commit / naive', singleRate, naiveRate);
    console.log(
      '  CPU per job, ms (this process / the Redis server / all PostgreSQL processes, autovacuum included):',
    );
    for (const key of ['ours', 'atClaim', 'single', 'naive', 'raw'] as const) {
      const c = totals.get(key)!.cpu;
      const per = (v: number) => (v / (ROUNDS * JOBS)).toFixed(3);
      console.log(
        `    ${key.padEnd(9)} node ${per(c.node)}  redis ${per(c.redis)}  postgres ${Number.isNaN(c.postgres) ? 'n/a' : per(c.postgres)}`,
      );
    }
    const check = await db
      .selectFrom('raw_data_packages')
      .select((eb) => [
        eb.fn.countAll<string>().as('rows'),
        eb.fn.count<string>('id').filterWhere('status', '=', 'completed').as('completed'),
      ])
      .executeTakeFirstOrThrow();
    const events = await db
      .selectFrom('operation_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('event', '=', 'completed')
      .executeTakeFirstOrThrow();
    // Warm-up + each round's three variants of ours; naive writes no events.
    const expectedEvents = (1 + 3 * ROUNDS) * JOBS;
    console.log(
      `  (check: ${check.completed} of ${check.rows} rows completed; ${events.n} completion events from our path, ${expectedEvents} expected)`,
    );
    if (check.completed !== check.rows || Number(events.n) !== expectedEvents)
      throw new Error('worker-overhead: not every job completed exactly once');
    await dispatcher.close();
    for (const e of emitters) await e.close();
    await naiveQueue.close();
    await rawQueue.close();
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    bull.disconnect();
    await schema.close();
  }
}

await main();
