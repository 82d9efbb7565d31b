// Findings around a hung (SIGSTOPped) PostgreSQL or Redis while a real worker and monitor run work.
// Usage (worktree root, after pnpm build):  node adversary/pause-mid-task.mjs <scenario>
//   pg-pause      PostgreSQL paused 30 s while a task is mid-way (hang fault 2 s at 'middle').
//   redis-pause   Redis (private) paused 30 s while a task is mid-way.
//   redis-oom     Redis (private) with maxmemory 1mb noeviction filled up while work runs.
//   client-kill   CLIENT KILL of every connection of the worker (BullMQ's blocking one too) 20 times.
// Prints what happened: processes alive, fatal lines, loss lines, every operation's status and
// completed-event count, /readyz during and after.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { createDatabase, migrateToLatest, readOperation } from '../packages/db/dist/index.js';
import {
  freePort,
  PrivatePostgres,
  PrivateRedis,
  startJsonProcess,
  waitFor,
} from '../tooling/test-support/dist/index.js';
import { seedRawPackages, seedSites } from '../apps/worker/dist/index.js';
const requireHere = createRequire(new URL('../apps/monitor-runner/package.json', import.meta.url));
const { Redis } = await import(requireHere.resolve('ioredis'));
const { sql } = await import(requireHere.resolve('kysely'));

const scenario = process.argv[2] ?? 'pg-pause';
const WORKER_MAIN = new URL('../apps/worker/dist/main.js', import.meta.url).pathname;
const MONITOR_MAIN = new URL('../apps/monitor-runner/dist/main.js', import.meta.url).pathname;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const t0 = Date.now();
const say = (...a) => console.log(`[${((Date.now() - t0) / 1000).toFixed(1)}s]`, ...a);

const server = await PrivatePostgres.start();
const cache = await PrivateRedis.start();
const database = createDatabase({ connectionString: server.url, max: 2 });
await migrateToLatest(database.db);
const root = await mkdtemp(join(tmpdir(), 'adv-pause-'));
const locations = await seedSites(database.db, root);
const procs = [];
let seeded = 0;
async function seed() {
  const [id] = await seedRawPackages(database.db, locations, {
    packages: 1,
    filesPerPackage: 2,
    minFileBytes: 1000,
    maxFileBytes: 20_000,
    source: 'cha/primecam-raw',
    buffer: 'cha/cha-buffer',
    prefix: `adv-${++seeded}`,
  });
  return id;
}
async function start(name, script, config, ready) {
  const file = join(root, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const p = await startJsonProcess({
    name,
    script,
    args: ['--config', file],
    env: { CCAT_CONFIG: '' },
    ready: (l) => l.msg === ready,
    readyTimeoutMs: 30_000,
  });
  procs.push(p);
  return p;
}
const readyz = (port) =>
  fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) }).then(
    (r) => r.status,
    () => 0,
  );

const shared = {
  database: { url: server.url, poolSize: 4 },
  redis: { url: cache.url },
  keyPrefix: 'adv:',
  log: { level: 'debug', pretty: false },
  recovery: { backoff: { baseMs: 10, capMs: 50 } },
};
const mPort = await freePort();
const wPort = await freePort();
const monitor = await start(
  'monitor',
  MONITOR_MAIN,
  {
    ...shared,
    monitorId: 'adv-monitor',
    http: { port: mPort },
    monitor: { loopIntervalMs: 200, heartbeatTimeoutMs: 3000, leaseMs: 500, scheduleTimeoutMs: 5000 },
    notifier: { relay: { pollIntervalMs: 100 } },
  },
  'monitor started',
);
const worker = await start(
  'worker',
  WORKER_MAIN,
  {
    ...shared,
    workerId: 'adv-worker',
    http: { port: wPort },
    operationTypes: ['raw_data_package'],
    concurrency: 2,
    heartbeat: { intervalMs: 150, timeoutMs: 3000, progressTimeoutMs: 60_000 },
    progressWriteIntervalMs: 100,
    dispatcher: { intervalMs: 100, scheduleTimeoutMs: 2000 },
    shutdown: { graceMs: 200, closeTimeoutMs: 2000 },
    faults: {
      enabled: true,
      rules: [
        {
          kind: 'hang',
          operationTypes: ['raw_data_package'],
          attempts: [0],
          stage: 'middle',
          durationMs: 2000,
        },
      ],
    },
  },
  'worker started',
);
say('started; readyz', await readyz(mPort), await readyz(wPort));

const ids = [];
const inProgress = async (id) =>
  (await readOperation(database.db, 'raw_data_package', id))?.status === 'in_progress';
ids.push(await seed());
await waitFor(() => inProgress(ids[0]), { timeoutMs: 30_000, message: 'in progress' });
say('task in progress; fault:', scenario);

if (scenario === 'pg-pause') {
  server.pause();
  await sleep(5_000);
  say('paused 5 s: readyz', await readyz(mPort), await readyz(wPort));
  await sleep(25_000);
  server.resume();
  say('resumed');
} else if (scenario === 'redis-pause') {
  cache.pause();
  await sleep(5_000);
  say('paused 5 s: readyz', await readyz(mPort), await readyz(wPort));
  await sleep(15_000);
  say('paused 20 s: readyz', await readyz(mPort), await readyz(wPort));
  await sleep(10_000);
  cache.resume();
  say('resumed');
} else if (scenario === 'redis-oom') {
  const admin = new Redis(cache.url);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  const used = Number(/used_memory:(\d+)/.exec(await admin.info('memory'))[1]);
  await admin.config('SET', 'maxmemory', String(used + 200_000));
  let filled = 0;
  try {
    for (;;) {
      await admin.set(`fill:${filled++}`, 'x'.repeat(10_000));
    }
  } catch (e) {
    say('full:', e.message);
  }
  ids.push(await seed());
  await sleep(20_000);
  say('OOM 20 s: readyz', await readyz(mPort), await readyz(wPort));
  await admin.config('SET', 'maxmemory', '0');
  say('memory limit lifted');
  admin.disconnect();
} else if (scenario === 'client-kill') {
  const admin = new Redis(cache.url);
  for (let i = 0; i < 20; i++) {
    const list = await admin.client('LIST');
    for (const line of String(list).split('\n')) {
      const m = /id=(\d+) .*name=(\S*)/.exec(line);
      if (m && m[2].startsWith('ccat-worker')) await admin.client('KILL', 'ID', m[1]).catch(() => 0);
      if (m && /bull|ccat-worker/.test(line) && !m[2]) await admin.client('KILL', 'ID', m[1]).catch(() => 0);
    }
    await sleep(500);
  }
  admin.disconnect();
  ids.push(await seed().catch(() => undefined));
}
ids.push(await seed());
// Let it settle: every seeded operation final (or 90 s).
await waitFor(
  async () => {
    for (const id of ids.filter(Boolean)) {
      const r = await readOperation(database.db, 'raw_data_package', id).catch(() => undefined);
      if (r?.status !== 'completed' && r?.status !== 'failed') return false;
    }
    return true;
  },
  { timeoutMs: 90_000, intervalMs: 500, message: 'every operation final' },
).catch((e) => say('NOT SETTLED:', e.message));
say('after: readyz', await readyz(mPort), await readyz(wPort));
for (const id of ids.filter(Boolean)) {
  const r = await readOperation(database.db, 'raw_data_package', id).catch(() => undefined);
  const ev =
    await sql`select event, count(*)::int n from operation_events where operation_id = ${id} and operation_type = 'raw_data_package' group by 1`
      .execute(database.db)
      .catch(() => ({ rows: [] }));
  say(`operation ${id}: ${r?.status} attempt=${r?.attempt}; events ${JSON.stringify(ev.rows)}`);
}
for (const p of procs) {
  const alive = p.child.exitCode === null && p.child.signalCode === null;
  const fatal = p.lines.filter((l) => /fatal/.test(String(l.msg)));
  const lost = p.lines.filter((l) => /connection lost/.test(String(l.msg)));
  const warn = [...new Set(p.lines.filter((l) => l.level >= 40).map((l) => String(l.msg)))];
  say(
    `${p.name}: alive=${alive} (exit ${p.child.exitCode ?? p.child.signalCode}); fatal lines ${fatal.length}; loss lines ${lost.length}; warnings: ${warn.slice(0, 10).join(' | ')}`,
  );
  if (!alive) say(`${p.name} stderr: ${p.stderr().slice(-800)}`);
}
for (const p of procs) {
  const alive = p.child.exitCode === null && p.child.signalCode === null;
  if (!alive) continue;
  const s = Date.now();
  p.signal('SIGTERM');
  const code = await p.exited;
  say(`${p.name}: SIGTERM -> exit ${code} in ${Date.now() - s} ms`);
}
await database.close();
await cache.stop();
await server.destroy();
await rm(root, { recursive: true, force: true });
