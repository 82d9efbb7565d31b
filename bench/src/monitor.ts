// bench/monitor:
//  (a) detection latency, kill → stall_recovered event, heartbeatTimeout 2 s and loopInterval 60 s:
//      our monitor (sleeps until the next deadline) beside a fixed-interval loop (a pass every 60 s)
//      over the same kill schedule, p50/p99 and the ratio.
//  (b) recovery throughput over BENCH_STALLED (100 000) stalled tasks (state + event + outbox per
//      task), tasks/s: batched (chunks of one type per statement, issue 13.3) beside the per-row path
//      (one transaction per stall, monitor.recoveryConcurrency at a time) on BENCH_STALLED_BASELINE (10 000) in the same run, both at the shipped monitor defaults,
//      and the notifications the relay would send after dedup/digest.
import { type Database } from '@ccat/db';
import { createTestDatabase, type SeededTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import {
  createMonitorMetrics,
  Monitor,
  monitorConfigSchema,
  type MonitorConfigInput,
} from '@ccat/monitor-runner';
import { builtinHandlers, createHandlerRegistry } from '@ccat/recovery-handlers';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import { pino } from 'pino';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, percentile, ratio, report } from './stats.js';

const KILLS = Number(process.env['BENCH_KILLS'] ?? 30);
const KILL_WINDOW_MS = Number(process.env['BENCH_KILL_WINDOW_MS'] ?? 30_000);
const STALLED = Number(process.env['BENCH_STALLED'] ?? 100_000);
const BASELINE = Math.min(STALLED, Number(process.env['BENCH_STALLED_BASELINE'] ?? 10_000));
const TIMEOUT_MS = 2000;
const LOOP_MS = 60_000;
const logger = pino({ level: 'silent' });

/** `n` in-progress raw data packages named `tag-<n>` at the seeded source (and its buffer). */
async function seedInProgress(t: SeededTestDatabase, n: number, tag: string): Promise<string[]> {
  const { db } = t;
  const { source, buffer } = t.locations;
  const { rows } = await sql<{ id: string }>`
    INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, claimed_by, started_at, last_seen_at)
    SELECT ${tag} || '-' || g, ${source}, ${buffer}, 'x', 'in_progress', 'bench', now(), now() FROM generate_series(1, ${n}) g RETURNING id::text`.execute(
    db,
  );
  return rows.map((r) => r.id);
}

function monitorFor(
  db: Kysely<Database>,
  redis: Redis,
  prefix: string,
  overrides: MonitorConfigInput['monitor'] = {},
  perRow = false,
): Monitor {
  const config = monitorConfigSchema.parse({
    keyPrefix: prefix,
    monitor: {
      livenessTimeoutMs: TIMEOUT_MS,
      heartbeatIntervalMs: 200,
      loopIntervalMs: LOOP_MS,
      progressStalls: false,
      ...overrides,
    },
    recovery: { defaultMaxRetries: 5, backoff: { baseMs: 1000, maxMs: 1000 } },
  });
  return new Monitor({
    db,
    redis,
    logger,
    config,
    monitorId: prefix,
    // Handlers without a `table` are recovered one by one: the per-row path of before issue 13.3.
    recovery: {
      db,
      registry: perRow ? perRowRegistry() : createHandlerRegistry(),
      policy: config.recovery,
      logger,
    },
    metrics: createMonitorMetrics(),
  });
}

const perRowRegistry = () => createHandlerRegistry(builtinHandlers().map(({ table: _table, ...h }) => h));

async function recoveredAt(db: Kysely<Database>, ids: readonly string[]): Promise<Map<string, number>> {
  const { rows } = await sql<{ id: string; at: Date }>`
    SELECT operation_id::text AS id, min(created_at) AS at FROM operation_events
    WHERE event = 'stall_recovered' AND operation_type = 'raw_data_package' AND operation_id = ANY(${[...ids]}::bigint[])
    GROUP BY operation_id`.execute(db);
  return new Map(rows.map((r) => [r.id, r.at.getTime()]));
}

async function latency(redis: Redis, opened: TestDatabase[]): Promise<void> {
  heading(
    `(a) detection latency, ${KILLS} workers killed over ${KILL_WINDOW_MS / 1000} s; heartbeatTimeout 2 s, loopInterval 60 s`,
  );
  const sides = await Promise.all(
    (['deadline', 'fixed'] as const).map(async (kind) => {
      // Each side is its own deployment (schema and key prefix): a monitor reconciles every
      // in-progress row of its database, and the other side's heartbeats are not under its prefix.
      const bench = await benchDatabase(`bench_mon_${kind}`);
      opened.push(bench);
      const db = bench.database.db;
      const prefix = uniquePrefix(`bench_mon_${kind}`);
      const ids = await seedInProgress(bench, KILLS, `lat-${kind}`);
      // One emitter per task: "killing the worker" stops its beats and leaves its member behind.
      const emitters = await Promise.all(
        ids.map(async (id) => {
          const e = new HeartbeatEmitter({
            redis,
            keyPrefix: prefix,
            intervalMs: 200,
            timeoutMs: TIMEOUT_MS,
            logger,
          });
          await e.start();
          await e.track(`raw_data_package:${id}:0`);
          return e;
        }),
      );
      return { kind, db, prefix, ids, emitters, monitor: monitorFor(db, redis, prefix) };
    }),
  );
  const [ours, fixed] = sides as [(typeof sides)[0], (typeof sides)[0]];
  let running = true;
  ours.monitor.start();
  // The baseline: the same pass, on a fixed 60 s tick.
  const baseline = (async () => {
    while (running) {
      await fixed.monitor.runPass();
      for (let t = 0; t < LOOP_MS && running; t += 100) await new Promise((r) => setTimeout(r, 100));
    }
  })();
  // The same kill schedule for both sides.
  const schedule = Array.from({ length: KILLS }, () => Math.random() * KILL_WINDOW_MS).sort((a, b) => a - b);
  const killedAt = new Map<string, number>();
  const t0 = Date.now();
  for (let i = 0; i < KILLS; i++) {
    const wait = t0 + schedule[i]! - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const now = Date.now();
    for (const side of sides) {
      // close() leaves the member in place, as a SIGKILL would.
      void side.emitters[i]!.close();
      killedAt.set(`${side.kind}:${side.ids[i]}`, now);
    }
  }
  const results: Record<string, number[]> = {};
  for (const side of sides) {
    for (;;) {
      const at = await recoveredAt(side.db, side.ids);
      if (at.size === side.ids.length) {
        results[side.kind] = side.ids.map((id) => at.get(id)! - killedAt.get(`${side.kind}:${id}`)!);
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  running = false;
  await ours.monitor.close();
  await fixed.monitor.close();
  await baseline;
  const o = results['deadline']!;
  const f = results['fixed']!;
  const p50 = report('ours (sleep until the next deadline) p50', percentile(o, 50), 'ms');
  report('ours p99', percentile(o, 99), 'ms');
  const b50 = report('baseline (fixed 60 s loop) p50', percentile(f, 50), 'ms');
  report('baseline p99', percentile(f, 99), 'ms');
  ratio('baseline p50 / ours p50', b50, p50);
  console.log(
    `  (a kill is found no earlier than its last beat + 2 s; ours adds the scan, the baseline adds up to 60 s)`,
  );
  for (const side of sides) await deleteKeysWithPrefix(redis, side.prefix);
}

async function throughput(t: SeededTestDatabase, redis: Redis): Promise<void> {
  const { db } = t;
  heading(
    `(b) recovery throughput, stalled tasks (state + event + outbox each): batched on ${STALLED.toLocaleString('en-US')}, per row on ${BASELINE.toLocaleString('en-US')}`,
  );
  const shipped = monitorConfigSchema.parse({}).monitor;
  console.log(describePrepared());
  console.log(
    `  (shipped defaults: monitor.batchSize ${shipped.batchSize}, monitor.recoveryConcurrency ${shipped.recoveryConcurrency})`,
  );
  const rates: Record<string, number> = {};
  for (const side of ['per-row', 'batched'] as const) {
    const count = side === 'batched' ? STALLED : BASELINE;
    const prefix = uniquePrefix(`bench_mon_${side}`);
    const ids = await seedInProgress(t, count, side);
    const emitter = new HeartbeatEmitter({
      redis,
      keyPrefix: prefix,
      intervalMs: 10,
      timeoutMs: 20,
      logger,
      maxTasksPerScript: 5000,
    });
    await emitter.start();
    for (let i = 0; i < ids.length; i += 5000)
      await Promise.all(ids.slice(i, i + 5000).map((id) => emitter.track(`raw_data_package:${id}:0`)));
    await emitter.close();
    await new Promise((r) => setTimeout(r, 100));
    // Both sides start from a checkpoint: the seeding's dirty pages are written now, not by a
    // checkpoint that would land inside one side's timed run and not the other's.
    await checkpoint(db);
    // The shipped defaults (monitor.batchSize, monitor.recoveryConcurrency), said in the heading.
    const monitor = monitorFor(db, redis, prefix, {}, side === 'per-row');
    const start = performance.now();
    let recovered = 0;
    while (recovered < count) {
      const r = await monitor.runPass();
      recovered += r.recovered;
      if (r.recovered === 0) throw new Error(`stuck at ${recovered}`);
    }
    const ms = performance.now() - start;
    rates[side] = report(
      side === 'batched'
        ? `batched (chunks of one type per statement), ${count} tasks`
        : `per row (one transaction each), ${count} tasks`,
      count / (ms / 1000),
      'tasks/s',
    );
    await monitor.close();
    await deleteKeysWithPrefix(redis, prefix);
    const check = await sql<{ e: number; n: number; keys: number }>`
      SELECT (SELECT count(*)::int FROM operation_events WHERE event = 'stall_recovered' AND operation_id = ANY(${ids}::bigint[])) AS e,
        count(*)::int AS n, count(DISTINCT dedup_key)::int AS keys
      FROM notifications WHERE event_kind = 'stall_recovered' AND operation_id = ANY(${ids}::bigint[])`.execute(
      db,
    );
    const c = check.rows[0]!;
    console.log(`    (check: ${c.e} events and ${c.n} outbox rows for ${count} tasks)`);
    // The relay digests alike rows (same dedup key) inside its window into one message.
    console.log(`    notifications the relay sends after dedup/digest: ${c.keys} per digest window`);
  }
  ratio('batched / per row (tasks/s)', rates['batched']!, rates['per-row']!, '>= 10');
}

/** CHECKPOINT when the role may (superuser or pg_checkpoint); otherwise the run goes on without it. */
async function checkpoint(db: Kysely<Database>): Promise<void> {
  try {
    await sql`CHECKPOINT`.execute(db);
  } catch (e) {
    console.log(`    (no CHECKPOINT before the timed run: ${(e as Error).message})`);
  }
}

/** A migrated schema of its own with the two sites (the one seeder, @ccat/db/testing). */
function benchDatabase(label: string): Promise<SeededTestDatabase> {
  return createTestDatabase(label, { max: 12, preparedStatements: preparedStatements(), locations: true });
}

async function main(): Promise<void> {
  const redis = await connectTestRedis();
  const opened: TestDatabase[] = [];
  try {
    const shared = await benchDatabase('bench_monitor');
    opened.push(shared);
    await throughput(shared, redis);
    // BENCH_KILLS=0 runs (b) alone (its figures do not depend on (a)).
    if (KILLS > 0) await latency(redis, opened);
  } finally {
    redis.disconnect();
    for (const o of opened) await o.close();
  }
}

await main();
