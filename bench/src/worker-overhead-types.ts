// Over 300 lines: one benchmark's seeding, its two sides and its report share one setup.
// bench/worker-overhead-types: what the recovery machinery costs per job for every operation type,
// with the creation of its next stage (issue 13, item 5). In-process, as bench/worker-overhead: the
// question is the per-job cost of our path (dispatch, fenced claim, heartbeat, fenced completion with
// its event, next stage) against the least a BullMQ worker must do for the same result, not process
// start-up or real file work (bench/pipeline measures that with worker processes).
//  ours:   no-op operations through the worker's own TaskRunner and Dispatcher, worker defaults
//          (group commit of claims and of completions, the next stage in the batch's transaction).
//  naive:  a BullMQ worker doing the same two status writes by primary key, the completion with the
//          same bookkeeping in its UPDATE, and the next-stage statements (NEXT_STAGE, one job at a time)
//          in one transaction with it: no fencing, no heartbeats, no events; jobs added with addBulk.
// Both sides write each type's own bookkeeping in the completion's statement, as the real operations
// do (RECORD: checksum and size, verified_at, deleted_at; ours through the operation's `record`).
// Each type's rows are seeded so that its next stage really writes: a transfer package has a
// destination buffer with an archive, an unpack has one raw data package in its transfer package
// (one archive transfer to create), an archive transfer has its package and transfer package.
import {
  createDatabase,
  OPERATION_TABLES,
  OPERATION_TYPES,
  queueName,
  type CompletionRecord,
  type OperationType,
} from '@ccat/db';
import { createTestDatabase } from '@ccat/db/testing';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import { NEXT_STAGE, workerConfigSchema, type Dispatcher, type Operation } from '@ccat/worker';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql, type RawBuilder } from 'kysely';
import { loadavg } from 'node:os';
import { pino } from 'pino';
import pg from 'pg';
import { benchDispatcher, benchEmitter, benchRunner, Completions } from './bench-worker.js';
import { CpuMeter, type CpuSample } from './cpu.js';
import { applicationBackendCpuMs, backendCpuDiff } from './proc.js';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, ratio, report } from './stats.js';

const JOBS = Number(process.env['BENCH_JOBS'] ?? 2000);
const CONCURRENCY = Number(process.env['BENCH_CONCURRENCY'] ?? 16);
const ROUNDS = 2;
/** The worker's group commit (transitions.maxBatch / maxInFlight); unset: the worker's defaults. */
const TRANSITIONS = {
  ...(process.env['BENCH_MAX_BATCH'] !== undefined && { maxBatch: Number(process.env['BENCH_MAX_BATCH']) }),
  ...(process.env['BENCH_MAX_IN_FLIGHT'] !== undefined && {
    maxInFlight: Number(process.env['BENCH_MAX_IN_FLIGHT']),
  }),
};
const TYPES = (process.env['BENCH_TYPES']?.split(',') ?? OPERATION_TYPES) as readonly OperationType[];

/**
 * The queue each type's rows go to here (`queueName`): the site and location of its home location,
 * as the one seeder names them (TWO_SITES of @ccat/db/testing).
 */
const HOME: Record<OperationType, readonly [site: string, location: string]> = {
  raw_data_package: ['cha', 'primecam-raw'],
  data_transfer_package: ['cha', 'cha-buffer'],
  data_transfer: ['cha', 'cha-buffer'],
  unpack: ['col', 'col-buffer'],
  long_term_archive_transfer: ['col', 'col-lta'],
  deletion: ['cha', 'primecam-raw'],
};

/** The sha256 of no bytes: a well-formed checksum for the no-op operations' bookkeeping. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/**
 * What each type's real operation records with its completion (apps/worker/src/operations: their
 * `record`), which our completion statement writes; the types without any are absent.
 */
const RECORD: { readonly [T in OperationType]?: CompletionRecord } = {
  raw_data_package: { checksum: { sha256: EMPTY_SHA256, sizeBytes: 0 } },
  data_transfer_package: { checksum: { sha256: EMPTY_SHA256, sizeBytes: 0 } },
  long_term_archive_transfer: { verified: true },
  deletion: { deleted: true },
};

/** The same bookkeeping as the naive side writes it: in its completion's own UPDATE. */
const NAIVE_SET: { readonly [T in OperationType]?: RawBuilder<unknown> } = {
  raw_data_package: sql`, sha256 = ${EMPTY_SHA256}, size_bytes = 0`,
  data_transfer_package: sql`, sha256 = ${EMPTY_SHA256}, size_bytes = 0`,
  long_term_archive_transfer: sql`, verified_at = now()`,
  deletion: sql`, deleted_at = now()`,
};

async function main(): Promise<void> {
  // Migrated and seeded (the two sites) by the fixture; the measured pool below is our own.
  const schema = await createTestDatabase('bench_types', { max: 1, locations: true });
  // Our own backends, by application_name, so their CPU can be told from the shared server's.
  const application = `ccat-bench-types-${process.pid}`;
  const database = createDatabase({
    connectionString: schema.url,
    schema: schema.schema,
    max: 20,
    applicationName: application,
    preparedStatements: preparedStatements(),
  });
  const db = database.db;
  const admin = new pg.Client({ connectionString: schema.url });
  await admin.connect();
  const redis = await connectTestRedis();
  const bull = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  const prefix = uniquePrefix('bench_types');
  const bullPrefix = `${prefix}bull`;
  const logger = pino({ level: process.env['BENCH_LOG'] ?? 'silent' });
  try {
    const { source: src, buffer: buf, remoteBuffer: cbuf, archive: lta } = schema.locations;

    /** `JOBS` pending operations of `type` named `tag-<n>`, with what their next stage reads. */
    const seed = async (type: OperationType, tag: string) => {
      const raw = (withBundle: boolean) => sql`
        INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, data_transfer_package_id)
        SELECT ${tag} || '-' || g, ${src}, ${buf}, 'raw/' || ${tag} || '-' || g || '.tar',
          ${withBundle ? sql`(SELECT id FROM data_transfer_packages WHERE name = ${tag} || '-' || g)` : sql`NULL`}
        FROM generate_series(1, ${JOBS}) g`;
      const bundles = sql`
        INSERT INTO data_transfer_packages (name, buffer_location_id, relative_path)
        SELECT ${tag} || '-' || g, ${buf}, 'transfer/' || ${tag} || '-' || g || '.tar' FROM generate_series(1, ${JOBS}) g`;
      const transfers = (arrived: boolean) => sql`
        INSERT INTO data_transfers (data_transfer_package_id, origin_location_id, destination_location_id, status, unpack_status)
        SELECT id, ${buf}, ${cbuf}, ${arrived ? 'completed' : 'pending'}, ${arrived ? 'pending' : null}
        FROM data_transfer_packages WHERE name LIKE ${tag} || '-%'`;
      // Earlier runs' next stages left pending rows of this type: not part of this run, never due.
      const { table, prefix: p } = OPERATION_TABLES[type];
      await sql`UPDATE ${sql.table(table)} SET ${sql.ref(`${p}next_attempt_at`)} = 'infinity'
        WHERE ${sql.ref(`${p}status`)} = 'pending'`.execute(db);
      switch (type) {
        case 'raw_data_package':
          await raw(false).execute(db);
          return;
        case 'data_transfer_package':
          await bundles.execute(db);
          return;
        case 'data_transfer':
          await bundles.execute(db);
          await transfers(false).execute(db);
          return;
        case 'unpack':
          await bundles.execute(db);
          await raw(true).execute(db);
          await transfers(true).execute(db);
          return;
        case 'long_term_archive_transfer':
          await bundles.execute(db);
          await raw(true).execute(db);
          await sql`
            INSERT INTO long_term_archive_transfers (raw_data_package_id, origin_location_id, destination_location_id, relative_path)
            SELECT id, ${cbuf}, ${lta}, 'archive/' || name || '.tar' FROM raw_data_packages WHERE name LIKE ${tag} || '-%'`.execute(
            db,
          );
          return;
        case 'deletion':
          await raw(false).execute(db);
          await sql`
            INSERT INTO physical_copies (raw_data_package_id, location_id, relative_path, copy_kind)
            SELECT id, ${src}, name, 'raw_files' FROM raw_data_packages WHERE name LIKE ${tag} || '-%'`.execute(
            db,
          );
          return;
      }
    };

    const completions = new Completions();

    const heartbeat = benchEmitter(redis, prefix, logger);
    await heartbeat.start();
    // No file work; the completion's bookkeeping as the real operation returns it.
    const noop = (type: OperationType): Operation => {
      const record = RECORD[type];
      return { run: () => Promise.resolve(record === undefined ? { bytes: 0 } : { bytes: 0, record }) };
    };
    const runner = benchRunner({
      db,
      heartbeat,
      logger,
      keyPrefix: prefix,
      transitions: TRANSITIONS,
      operations: Object.fromEntries(OPERATION_TYPES.map((t) => [t, noop(t)])) as Record<
        OperationType,
        Operation
      >,
    });
    const dispatchers = new Map<OperationType, Dispatcher>();
    const dispatcherFor = (type: OperationType) => {
      let d = dispatchers.get(type);
      if (d === undefined) {
        d = benchDispatcher({ db, connection: bull, bullPrefix, logger }, [type]);
        dispatchers.set(type, d);
      }
      return d;
    };

    let runs = 0;
    const ours = async (type: OperationType) => {
      await seed(type, `ours-${runs++}`);
      const target = completions.count + JOBS;
      const start = performance.now();
      const w = new Worker(
        queueName(...HOME[type], type),
        async (job) => {
          const outcome = await runner.run(job.data, job.id, job.queueName);
          if (outcome === 'completed') completions.done();
          else throw new Error(`bench: ${type} job ${job.id} ended ${outcome}`);
        },
        { connection: bull, prefix: bullPrefix, concurrency: CONCURRENCY, maxStalledCount: 0 },
      );
      w.on('failed', (_job, e) => console.error(e.message));
      await dispatcherFor(type).runOnce();
      await completions.until(target);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    const naiveQueue = new Queue('naive', { connection: bull, prefix: bullPrefix });
    const naive = async (type: OperationType) => {
      const tag = `naive-${runs++}`;
      await seed(type, tag);
      const { table, prefix: p } = OPERATION_TABLES[type];
      const t = sql.table(table);
      const c = (n: string) => sql.ref(`${p}${n}`);
      const target = completions.count + JOBS;
      const start = performance.now();
      const w = new Worker(
        'naive',
        async (job) => {
          const id = (job.data as { id: string }).id;
          await sql`UPDATE ${t} SET ${c('status')} = 'in_progress', ${c('claimed_by')} = 'naive', ${c('started_at')} = now(), updated_at = now() WHERE id = ${id}`.execute(
            db,
          );
          const complete = sql`UPDATE ${t} SET ${c('status')} = 'completed', ${c('finished_at')} = now(), updated_at = now()${NAIVE_SET[type] ?? sql``} WHERE id = ${id}`;
          const next = NEXT_STAGE[type];
          if (next !== undefined)
            await db.transaction().execute(async (trx) => {
              await complete.execute(trx);
              await next(trx, [{ type, id, attempt: 0 }]);
            });
          else await complete.execute(db);
          completions.done();
        },
        { connection: bull, prefix: bullPrefix, concurrency: CONCURRENCY, maxStalledCount: 0 },
      );
      const pending = await sql<{ id: string }>`
        UPDATE ${t} SET ${c('status')} = 'scheduled', ${c('scheduled_at')} = now() WHERE ${c('status')} = 'pending' AND ${c('next_attempt_at')} <= now() RETURNING id::text AS id`.execute(
        db,
      );
      await naiveQueue.addBulk(
        pending.rows.map((r) => ({
          name: 'x',
          data: { id: r.id },
          opts: { jobId: `n:${type}-${r.id}:0`, removeOnComplete: true, attempts: 1 },
        })),
      );
      await completions.until(target);
      const ms = performance.now() - start;
      await w.close();
      return ms;
    };

    heading(
      `worker overhead per operation type, with its next stage: ${JOBS.toLocaleString('en-US')} no-op jobs per run, concurrency ${CONCURRENCY}, ${ROUNDS} alternating rounds`,
    );
    const t = workerConfigSchema.parse({ transitions: TRANSITIONS }).transitions;
    console.log(
      `  (ours: transitions.maxBatch ${t.maxBatch}, maxInFlight ${t.maxInFlight}; load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')})`,
    );
    console.log(describePrepared());
    const cpu = new CpuMeter(redis);
    const ratios: [OperationType, number][] = [];
    const cpuLines: string[] = [];
    const completedOf = async (type: OperationType) => {
      const { table, prefix: p } = OPERATION_TABLES[type];
      const r = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM ${sql.table(table)} WHERE ${sql.ref(`${p}status`)} = 'completed'`.execute(
        db,
      );
      return r.rows[0]!.n;
    };
    for (const type of TYPES) {
      const completedBefore = await completedOf(type);
      const zero: CpuSample = { node: 0, redis: 0, postgres: 0 };
      const totals = { ours: { ms: 0, cpu: zero, pg: 0 }, naive: { ms: 0, cpu: zero, pg: 0 } };
      // Warm-up, then alternate so both share the machine's noise.
      await ours(type);
      await naive(type);
      for (let i = 0; i < ROUNDS; i++) {
        for (const [key, run] of [
          ['naive', naive],
          ['ours', ours],
        ] as const) {
          const before = await cpu.sample();
          const pgBefore = await applicationBackendCpuMs(admin, application);
          const ms = await run(type);
          const used = CpuMeter.diff(before, await cpu.sample());
          const own = backendCpuDiff(pgBefore, await applicationBackendCpuMs(admin, application));
          totals[key] = {
            ms: totals[key].ms + ms,
            cpu: CpuMeter.add(totals[key].cpu, used),
            pg: totals[key].pg + own,
          };
        }
      }
      // Every seeded operation of this type completed (ours and naive, warm-up included).
      const completed = (await completedOf(type)) - completedBefore;
      if (completed !== (1 + ROUNDS) * 2 * JOBS)
        throw new Error(
          `worker-overhead-types: ${type}: ${completed} completed, ${(1 + ROUNDS) * 2 * JOBS} expected`,
        );
      const next =
        (RECORD[type] !== undefined ? ' + bookkeeping' : '') +
        (NEXT_STAGE[type] !== undefined ? ' + next stage' : '');
      const o = report(`${type}: ours${next}`, (ROUNDS * JOBS) / (totals.ours.ms / 1000), 'jobs/s');
      const n = report(`${type}: naive${next}`, (ROUNDS * JOBS) / (totals.naive.ms / 1000), 'jobs/s');
      ratio(`${type}: ours / naive`, o, n, '>= 0.9');
      ratios.push([type, o / n]);
      // On a machine whose cores are busy, throughput follows CPU per job: this process and our own
      // PostgreSQL backends, exactly (the Redis server and the other PostgreSQL processes are shared).
      const perJob = (k: 'ours' | 'naive') => (totals[k].cpu.node + totals[k].pg) / (ROUNDS * JOBS);
      const oc = report(`${type}: ours, CPU ms per job (node + own backends)`, perJob('ours'), 'ms');
      const nc = report(`${type}: naive, CPU ms per job (node + own backends)`, perJob('naive'), 'ms');
      ratio(`${type}: naive / ours CPU per job (efficiency)`, nc, oc, '>= 0.9');
      for (const key of ['ours', 'naive'] as const) {
        const cs = totals[key].cpu;
        const per = (v: number) => (v / (ROUNDS * JOBS)).toFixed(3);
        cpuLines.push(
          `    ${type.padEnd(27)} ${key.padEnd(6)} node ${per(cs.node)}  own backends ${per(totals[key].pg)}  redis ${per(cs.redis)}  all postgres ${Number.isNaN(cs.postgres) ? 'n/a' : per(cs.postgres)}`,
        );
      }
    }
    console.log(
      '  CPU per job, ms (this process / its own PostgreSQL backends / the Redis server and all PostgreSQL processes, both shared with other work):',
    );
    for (const line of cpuLines) console.log(line);

    const events = await db
      .selectFrom('operation_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('event', '=', 'completed')
      .executeTakeFirstOrThrow();
    const expectedEvents = TYPES.length * (1 + ROUNDS) * JOBS;
    console.log(
      `  (check: every seeded operation of each type completed; ${events.n} completion events from our path, ${expectedEvents} expected)`,
    );
    if (Number(events.n) !== expectedEvents)
      throw new Error('worker-overhead-types: not every job completed exactly once');
    const missed = ratios.filter(([, r]) => r < 0.9).map(([t]) => t);
    console.log(`  types below 0.9: ${missed.length === 0 ? 'none' : missed.join(', ')}`);
    for (const d of dispatchers.values()) await d.close();
    await heartbeat.close();
    await naiveQueue.close();
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
    bull.disconnect();
    await database.close();
    await admin.end();
    await schema.close();
  }
}

await main();
