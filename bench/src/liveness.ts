// bench/liveness (issue 13 item 2): how soon a dead worker's task is recovered at the shipped
// defaults, ours beside BullMQ's stalled-job check at BullMQ's defaults, on one kill schedule.
//  ours:     real worker processes (dist/main.js of @ccat/worker) at the shipped heartbeat defaults
//            (a beat every 4 s, liveness 12 s), each holding one hung raw_data_package task, and the
//            monitor at its shipped defaults; time from SIGKILL to the stall_recovered event.
//  baseline: real BullMQ worker processes at BullMQ's defaults (lockDuration 30 s, stalledInterval
//            30 s), each holding one hung job, beside a live BullMQ worker of the same queue; time from
//            SIGKILL to BullMQ's `stalled` event (the job moved back to wait).
// Each kill sends SIGKILL to one victim of each side at the same instant; kills are spread over
// BENCH_LIVENESS_WINDOW_MS so they fall at every phase of the beat and of the stalled check.
// Prints p50 and p99 for both sides and the ratio (target: ours at least 3x faster at p99).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestDatabase, seedRawPackages, seedSites } from '@ccat/db/testing';
import { createMonitorMetrics, Monitor, monitorConfigSchema } from '@ccat/monitor-runner';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  type JsonProcess,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
} from '@ccat/test-support';
import { Queue, QueueEvents, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, percentile, ratio, report } from './stats.js';

const KILLS = Number(process.env['BENCH_LIVENESS_KILLS'] ?? 6);
const WINDOW_MS = Number(process.env['BENCH_LIVENESS_WINDOW_MS'] ?? 24_000);
const WORKER_MAIN = join(
  dirname(createRequire(import.meta.url).resolve('@ccat/worker/package.json')),
  'dist',
  'main.js',
);
const VICTIM_MAIN = fileURLToPath(new URL('./bullmq-victim.js', import.meta.url));
const logger = pino({ level: 'silent' });

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  heading(
    `liveness: SIGKILL → recovery at the shipped defaults, ${KILLS} kills per side over ${WINDOW_MS / 1000} s`,
  );
  console.log(describePrepared());
  const schema = await createTestDatabase('bench_liveness', { preparedStatements: preparedStatements() });
  const database = schema.database;
  const db = database.db;
  const redis = await connectTestRedis();
  const prefix = uniquePrefix('bench_live');
  const bullPrefix = uniquePrefix('bench_bull');
  const root = await mkdtemp(join(tmpdir(), 'ccat-bench-liveness-'));
  const processes: JsonProcess[] = [];
  const bullConnection = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  const queueName = 'liveness';
  const queue = new Queue(queueName, { connection: bullConnection, prefix: bullPrefix });
  const eventsConnection = new Redis(testRedisUrl(), { maxRetriesPerRequest: null });
  const events = new QueueEvents(queueName, { connection: eventsConnection, prefix: bullPrefix });
  let rescuer: Worker | undefined;
  let monitor: Monitor | undefined;
  try {
    const locations = await seedSites(db, root);
    // Ours: the monitor at its shipped defaults.
    const config = monitorConfigSchema.parse({ keyPrefix: prefix, http: { port: null } });
    monitor = new Monitor({
      db,
      redis,
      logger,
      config,
      monitorId: 'bench-monitor',
      recovery: { db, registry: createHandlerRegistry(), policy: config.recovery, logger },
      metrics: createMonitorMetrics(),
    });
    monitor.start();
    // Ours: one victim process per kill, each holding one hung task (claimed one after another).
    const ours: { process: JsonProcess; id: string }[] = [];
    for (let i = 0; i < KILLS; i++) {
      const [id] = await seedRawPackages(db, locations, {
        packages: 1,
        filesPerPackage: 1,
        minFileBytes: 1000,
        maxFileBytes: 2000,
        source: 'cha/primecam-raw',
        buffer: 'cha/cha-buffer',
        prefix: `live-${i}`,
      });
      const name = `victim-${i}`;
      const file = join(root, `${name}.json`);
      await writeFile(
        file,
        JSON.stringify({
          workerId: name,
          database: {
            url: schema.url,
            schema: schema.schema,
            poolSize: 2,
            preparedStatements: preparedStatements(),
          },
          redis: { url: testRedisUrl() },
          keyPrefix: prefix,
          operationTypes: ['raw_data_package'],
          concurrency: 1,
          http: { port: null },
          log: { level: 'info', pretty: false },
          faults: {
            enabled: true,
            rules: [
              {
                kind: 'hang',
                operationTypes: ['raw_data_package'],
                attempts: [0],
                stage: 'middle',
                durationMs: 3_600_000,
              },
            ],
          },
        }),
      );
      const p = await startJsonProcess({
        name,
        script: WORKER_MAIN,
        args: ['--config', file],
        env: { CCAT_CONFIG: '' },
        ready: (l) => l['msg'] === 'worker started',
      });
      processes.push(p);
      await until(`${name} claims its task`, 60_000, async () => {
        const r = await db
          .selectFrom('raw_data_packages')
          .select(['status', 'claimed_by'])
          .where('id', '=', id!)
          .executeTakeFirst();
        return r?.status === 'in_progress' && r.claimed_by === name ? true : undefined;
      });
      ours.push({ process: p, id: id! });
    }
    // Baseline: one BullMQ victim per kill, each holding one job; then a live worker of the queue.
    const bull: { process: JsonProcess; jobId: string }[] = [];
    for (let i = 0; i < KILLS; i++) {
      const p = await startJsonProcess({
        name: `bull-victim-${i}`,
        script: VICTIM_MAIN,
        args: [testRedisUrl(), queueName, bullPrefix],
        ready: (l) => l['msg'] === 'ready',
      });
      processes.push(p);
      await queue.add('job', { i });
      const active = await p.waitForLine((l) => l['msg'] === 'active', 30_000, 'the victim takes its job');
      bull.push({ process: p, jobId: String(active['jobId']) });
    }
    const stalledAt = new Map<string, number>();
    events.on('stalled', ({ jobId }) => {
      if (!stalledAt.has(jobId)) stalledAt.set(jobId, Date.now());
    });
    await events.waitUntilReady();
    rescuer = new Worker(queueName, () => Promise.resolve(), {
      connection: bullConnection,
      prefix: bullPrefix,
    });
    await rescuer.waitUntilReady();

    // The same kill schedule for both sides.
    const killedAt: number[] = [];
    const t0 = Date.now();
    for (let i = 0; i < KILLS; i++) {
      const wait = t0 + (i * WINDOW_MS) / Math.max(1, KILLS - 1) - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      ours[i]!.process.signal('SIGKILL');
      bull[i]!.process.signal('SIGKILL');
      killedAt.push(Date.now());
    }
    // Ours: the stall_recovered event's time (the database's clock, on this same host).
    const oursMs = await until('our recoveries', 180_000, async () => {
      const rows = await db
        .selectFrom('operation_events')
        .select(['operation_id', 'created_at'])
        .where('operation_type', '=', 'raw_data_package')
        .where('event', '=', 'stall_recovered')
        .execute();
      const at = new Map(rows.map((r) => [String(r.operation_id), r.created_at.getTime()]));
      if (!ours.every((o) => at.has(o.id))) return undefined;
      return ours.map((o, i) => at.get(o.id)! - killedAt[i]!);
    });
    const bullMs = await until('BullMQ stalled-job recoveries', 180_000, () =>
      Promise.resolve(
        bull.every((b) => stalledAt.has(b.jobId))
          ? bull.map((b, i) => stalledAt.get(b.jobId)! - killedAt[i]!)
          : undefined,
      ),
    );
    report('ours: SIGKILL → stall_recovered p50', percentile(oursMs, 50), 'ms');
    const o99 = report('ours p99', percentile(oursMs, 99), 'ms');
    report('BullMQ defaults: SIGKILL → stalled p50', percentile(bullMs, 50), 'ms');
    const b99 = report('BullMQ defaults p99', percentile(bullMs, 99), 'ms');
    ratio('BullMQ p99 / ours p99', b99, o99, '>= 3');
    console.log(
      `  (ours: a beat every 4 s, liveness 12 s; BullMQ: lockDuration 30 s, stalledInterval 30 s; ${KILLS} kills per side)`,
    );
  } finally {
    for (const p of processes) {
      p.signal('SIGKILL');
      await p.exited;
    }
    await monitor?.close();
    await rescuer?.close();
    await events.close();
    eventsConnection.disconnect();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
    bullConnection.disconnect();
    await deleteKeysWithPrefix(redis, prefix);
    await deleteKeysWithPrefix(redis, bullPrefix);
    redis.disconnect();
    await schema.close();
    await rm(root, { recursive: true, force: true });
  }
}

await main();
