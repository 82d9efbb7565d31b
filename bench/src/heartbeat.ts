// bench/heartbeat: what heartbeats cost at the design's scale, each beside a naive baseline.
//  (a) 100 000 in-flight tasks over 50 emitters beating every 10 s: beat round trip p50/p99 and Redis
//      ops/s from INFO stats, over a shortened run of BENCH_HB_INTERVALS (default 3) intervals.
//  (b) 1 000 expired among 1 000 000 tracked tasks: one scan (target < 10 ms) beside the naive design
//      measured in the same run, one key per task holding its deadline, found by SCAN + MGET
//      (target >= 100x).
//  (c) one beat round trip for 1 000 tasks beside 1 000 single SETs.
// Uses a unique key prefix on the test Redis and deletes everything it wrote.
import { HeartbeatEmitter, heartbeatKeys, HeartbeatScanner } from '@ccat/heartbeat';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import { cpus, loadavg } from 'node:os';
import { Redis } from 'ioredis';
import { heading, percentile, ratio, report } from './stats.js';

const TASKS = Number(process.env['BENCH_HB_TASKS'] ?? 100_000);
const EMITTERS = Number(process.env['BENCH_HB_EMITTERS'] ?? 50);
const INTERVAL_MS = Number(process.env['BENCH_HB_INTERVAL_MS'] ?? 10_000);
const INTERVALS = Number(process.env['BENCH_HB_INTERVALS'] ?? 3);
const BIG = Number(process.env['BENCH_HB_BIG'] ?? 1_000_000);
const EXPIRED = 1_000;
const LOAD_CHUNK = 1_000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function serverNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

async function commandsProcessed(redis: Redis): Promise<number> {
  const info = await redis.info('stats');
  const m = /total_commands_processed:(\d+)/.exec(info);
  if (!m) throw new Error('INFO stats has no total_commands_processed');
  return Number(m[1]);
}

/** (a) the steady state: many processes, each beating for its tasks once per interval. */
async function steadyState(redis: Redis, keyPrefix: string): Promise<void> {
  heading(
    `(a) ${TASKS.toLocaleString('en-US')} in-flight tasks, ${EMITTERS} emitters, one beat each every ${INTERVAL_MS / 1000} s ` +
      `(shortened run: ${INTERVALS} intervals)`,
  );
  const clients: Redis[] = [];
  const emitters: HeartbeatEmitter[] = [];
  const rtts: number[] = [];
  let failures = 0;
  try {
    for (let i = 0; i < EMITTERS; i++) {
      const client = new Redis(testRedisUrl());
      clients.push(client);
      emitters.push(
        new HeartbeatEmitter({
          redis: client,
          keyPrefix,
          emitterId: `bench-worker-${i}`,
          intervalMs: INTERVAL_MS,
          onBeat: (r) => {
            if (r.serverTime !== undefined) rtts.push(r.rttMs);
          },
          onError: () => void failures++,
        }),
      );
    }
    const perEmitter = Math.ceil(TASKS / EMITTERS);
    const registering = performance.now();
    await Promise.all(
      emitters.map((e, i) =>
        Promise.all(
          Array.from({ length: perEmitter }, (_, j) =>
            e.track(`data_transfer:${i * perEmitter + j}:0`, {
              queue: 'cha_buffer_data_transfer',
              progress: { bytesDone: 0 },
            }),
          ),
        ),
      ),
    );
    report('registration of all tasks (track, coalesced per emitter)', performance.now() - registering, 'ms');

    // This Redis is shared: measure what the other clients do without us, to tell our share apart.
    const backgroundS = 5;
    const bgBefore = await commandsProcessed(redis);
    await sleep(backgroundS * 1000);
    const background = ((await commandsProcessed(redis)) - bgBefore) / backgroundS;

    // Real processes start at random moments: spread the emitters' phases over one interval.
    for (const [i, e] of emitters.entries()) {
      await e.start();
      if (i < EMITTERS - 1) await sleep(INTERVAL_MS / EMITTERS);
    }
    const opsBefore = await commandsProcessed(redis);
    const windowStart = performance.now();
    const beatsBefore = emitters.reduce((s, e) => s + e.stats().beats, 0);
    while (!emitters.every((e) => e.stats().beats >= INTERVALS)) await sleep(50);
    const windowS = (performance.now() - windowStart) / 1000;
    const opsAfter = await commandsProcessed(redis);
    const beats = emitters.reduce((s, e) => s + e.stats().beats, 0) - beatsBefore;

    report('beats measured', rtts.length, 'beats');
    report('tasks per beat', perEmitter, 'tasks');
    report('beat round trip p50', percentile(rtts, 50), 'ms');
    report('beat round trip p99', percentile(rtts, 99), 'ms');
    report('failed beats', failures, '');
    report('measurement window', windowS, 's');
    const total = (opsAfter - opsBefore) / windowS;
    report('Redis ops/s, whole server (INFO stats total_commands_processed)', total, 'ops/s');
    report('  other clients of this shared Redis, 5 s before we started', background, 'ops/s');
    report('  attributable to the heartbeats (difference)', Math.max(0, total - background), 'ops/s');
    report('beat round trips/s (one EVALSHA each)', beats / windowS, 'beats/s');
    // EVALSHA + TIME + ZMSCORE per 1 000 ids + ZADD per 500 members (1 000 arguments).
    const perBeat = 2 + Math.ceil(perEmitter / 1000) + Math.ceil(perEmitter / 500);
    report(`expected commands per beat of ${perEmitter} tasks`, perBeat, 'ops');
    report('expected heartbeat ops/s from that', (beats / windowS) * perBeat, 'ops/s');
    report('task heartbeats refreshed per second', (beats * perEmitter) / windowS, 'tasks/s');
    console.log(
      '  (INFO counts commands run inside scripts, and those of every other client of this Redis.)',
    );
  } finally {
    await Promise.all(emitters.map((e) => e.close()));
    await Promise.all(clients.map((c) => c.quit()));
    await deleteKeysWithPrefix(redis, keyPrefix);
  }
}

/** Writes `n` tracked tasks, of which `EXPIRED` are past their deadline, in pipelined batches. */
async function load(redis: Redis, keyPrefix: string, n: number, now: number): Promise<void> {
  const keys = heartbeatKeys({ keyPrefix });
  const naivePrefix = `${keyPrefix}naive:`;
  const every = Math.floor(n / EXPIRED);
  for (let from = 0; from < n; from += 10 * LOAD_CHUNK) {
    const pipeline = redis.pipeline();
    for (let c = from; c < Math.min(n, from + 10 * LOAD_CHUNK); c += LOAD_CHUNK) {
      const zadd: (string | number)[] = [];
      const details: string[] = [];
      const progress: string[] = [];
      const naive: string[] = [];
      for (let i = c; i < Math.min(n, c + LOAD_CHUNK); i++) {
        const id = `data_transfer:${i}:0`;
        const deadline = i % every === 0 ? now - 1_000 - (i % 5_000) : now + 3_600_000 + (i % 60_000);
        zadd.push(deadline, id);
        details.push(
          id,
          `{"registeredAt":${now},"v":1,"emitterId":"bench-worker-${i % 50}","host":"bench","timeoutMs":3600000,"queue":"cha_buffer_data_transfer"}`,
        );
        progress.push(id, `${now}:{"bytesDone":${i}}`);
        naive.push(`${naivePrefix}${id}`, String(deadline));
      }
      pipeline.zadd(keys.deadlines, ...zadd);
      pipeline.hset(keys.details, ...details);
      pipeline.hset(keys.progress, ...progress);
      pipeline.mset(...naive);
    }
    const results = await pipeline.exec();
    const failed = results?.find(([e]) => e !== null)?.[0];
    if (failed) throw failed;
  }
}

/** The naive monitor: walk every key with SCAN, read each deadline, keep the past ones. */
async function naiveScan(redis: Redis, naivePrefix: string, now: number): Promise<number> {
  let cursor = '0';
  let found = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${naivePrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      const values = await redis.mget(...keys);
      for (const v of values) if (v !== null && Number(v) <= now) found++;
    }
  } while (cursor !== '0');
  return found;
}

/** (b) finding the expired among many. */
async function findExpired(redis: Redis, keyPrefix: string): Promise<void> {
  heading(
    `(b) finding ${EXPIRED.toLocaleString('en-US')} expired among ${BIG.toLocaleString('en-US')} tracked tasks`,
  );
  const now = await serverNow(redis);
  const loading = performance.now();
  await load(redis, keyPrefix, BIG, now);
  report(
    'loading (pipelined batches of 1 000: ZADD, 2 HSET, MSET)',
    (performance.now() - loading) / 1000,
    's',
  );

  const scanner = new HeartbeatScanner({ redis, keyPrefix, batchSize: EXPIRED });
  const samples: number[] = [];
  for (let i = 0; i < 25; i++) {
    const s = performance.now();
    const scan = await scanner.scanExpired();
    if (i >= 5) samples.push(performance.now() - s);
    if (scan.tasks.length !== EXPIRED || scan.dueTotal !== EXPIRED) {
      throw new Error(`expected ${EXPIRED} expired, got ${scan.tasks.length} (due ${scan.dueTotal})`);
    }
  }
  const ours = report(
    'scanExpired p50 (1 script: ZRANGEBYSCORE + details, decoded)',
    percentile(samples, 50),
    'ms',
  );
  report('scanExpired p99', percentile(samples, 99), 'ms   (target < 10 ms)');

  const naive: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    const found = await naiveScan(redis, `${keyPrefix}naive:`, now);
    naive.push(performance.now() - s);
    if (found !== EXPIRED) throw new Error(`naive scan found ${found}, expected ${EXPIRED}`);
  }
  const base = report('baseline: key per task, SCAN MATCH + MGET, p50 of 3', percentile(naive, 50), 'ms');
  ratio('speed-up (baseline / scanExpired, p50)', base, ours, '>= 100x');
  await deleteKeysWithPrefix(redis, keyPrefix);
}

/** (c) one round trip for a process's tasks beside one command per task. */
async function beatVersusSets(redis: Redis, keyPrefix: string): Promise<void> {
  heading('(c) one beat for 1 000 tasks vs 1 000 single SETs');
  const client = new Redis(testRedisUrl());
  const emitter = new HeartbeatEmitter({ redis: client, keyPrefix, intervalMs: INTERVAL_MS });
  try {
    await Promise.all(Array.from({ length: 1_000 }, (_, i) => emitter.track(`unpack:${i}:0`)));
    const beats: number[] = [];
    for (let i = 0; i < 60; i++) {
      const r = await emitter.beatNow();
      if (r.beaten !== 1_000 || r.lost.length > 0) throw new Error('beat did not cover 1 000 tasks');
      if (i >= 10) beats.push(r.rttMs);
    }
    const ours = report('one beat (1 EVALSHA for 1 000 tasks) p50', percentile(beats, 50), 'ms');
    const sets: number[] = [];
    const pipelined: number[] = [];
    for (let run = 0; run < 6; run++) {
      let s = performance.now();
      for (let i = 0; i < 1_000; i++) await client.set(`${keyPrefix}naive:${i}`, '1', 'PX', 3_600_000);
      if (run > 0) sets.push(performance.now() - s);
      s = performance.now();
      const p = client.pipeline();
      for (let i = 0; i < 1_000; i++) p.set(`${keyPrefix}naive:${i}`, '1', 'PX', 3_600_000);
      await p.exec();
      if (run > 0) pipelined.push(performance.now() - s);
    }
    const base = report('baseline: 1 000 SET PX, one round trip each, p50', percentile(sets, 50), 'ms');
    report('for reference: the same 1 000 SETs pipelined, p50', percentile(pipelined, 50), 'ms');
    ratio('speed-up (1 000 SETs / one beat)', base, ours);
  } finally {
    await emitter.close();
    await client.quit();
    await deleteKeysWithPrefix(redis, keyPrefix);
  }
}

async function main(): Promise<void> {
  const redis = await connectTestRedis();
  const prefix = uniquePrefix('bench_heartbeat');
  const started = performance.now();
  try {
    const [version] = /redis_version:\S+/.exec(await redis.info('server')) ?? ['redis_version:?'];
    console.log(`bench/heartbeat against ${testRedisUrl()} (${version}), key prefix ${prefix}`);
    console.log(
      `machine: ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
    await steadyState(redis, `${prefix}a:`);
    await findExpired(redis, `${prefix}b:`);
    await beatVersusSets(redis, `${prefix}c:`);
  } finally {
    await deleteKeysWithPrefix(redis, prefix);
    await redis.quit();
    console.log(
      `\ntotal ${((performance.now() - started) / 1000).toFixed(1)} s; load average at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    );
  }
}

await main();
