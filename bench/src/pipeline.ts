// bench/pipeline: the main job's speed on real files (issue 13, item 5). About 1 GiB of raw files
// through the whole chain (package, bundle, transfer, unpack and verify, archive and verify, delete)
// by real worker processes (apps/worker/dist/main.js, as the demo runs them), and in the same run the
// same work by plain tools in a shell (baseline.sh: tar, sha256sum, cp, tar -x, rm) on a copy of the
// same files. Prints MB/s of both with the ratio, and CPU seconds per GB of both.
//
// CPU: ours is the worker processes' user+sys (and of any child they waited for) from /proc, plus
// the PostgreSQL backends connected to the bench's own database (backends that exit during the run
// are lost); the Redis server is shared with other work and is left out. The baseline's is the
// shell's `times` (itself and all it waited for). The bench process itself (seeding, polling) is
// counted in neither. MB = 10^6 bytes, GB = 10^9 bytes, of raw files.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, migrateToLatest } from '@ccat/db';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import { seedRawPackages, seedSites, testDatabaseUrl } from '@ccat/db/testing';
import type { WorkerConfigInput } from '@ccat/worker';
import { sql } from 'kysely';
import pg from 'pg';
import { backendCpuDiff, backendCpuMs, parseTimes, processCpuMs } from './proc.js';
import { describePrepared, preparedStatements } from './prepared.js';
import { fmt, heading, ratio, report } from './stats.js';

const TOTAL_MIB = Number(process.env['BENCH_PIPELINE_MIB'] ?? 1024);
const PACKAGES = Number(process.env['BENCH_PIPELINE_PACKAGES'] ?? 32);
const FILES_PER_PACKAGE = Number(process.env['BENCH_PIPELINE_FILES'] ?? 8);
const BUNDLE = Number(process.env['BENCH_PIPELINE_BUNDLE'] ?? 4);
const WORKERS = Number(process.env['BENCH_PIPELINE_WORKERS'] ?? 2);
const CONCURRENCY = Number(process.env['BENCH_PIPELINE_CONCURRENCY'] ?? 2);
/** Items at once per stage in the shell baseline: the machine's 2 cores. */
const PAR = Number(process.env['BENCH_PIPELINE_PAR'] ?? 2);
/** Extra node options for the worker processes, space-separated (e.g. `--cpu-prof --cpu-prof-dir=DIR`). */
const NODE_ARGS = (process.env['BENCH_PIPELINE_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');
const TIMEOUT_MS = Number(process.env['BENCH_PIPELINE_TIMEOUT_MS'] ?? 600_000);

const require = createRequire(import.meta.url);
const WORKER_MAIN = join(dirname(require.resolve('@ccat/worker/package.json')), 'dist', 'main.js');
const BASELINE_SH = fileURLToPath(new URL('../src/baseline.sh', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`pipeline bench: timed out waiting for ${what}`);
    await sleep(250);
  }
}

async function main(): Promise<void> {
  if (PACKAGES % BUNDLE !== 0)
    throw new Error('BENCH_PIPELINE_PACKAGES must be a multiple of the bundle size');
  const fileBytes = Math.floor((TOTAL_MIB * 2 ** 20) / (PACKAGES * FILES_PER_PACKAGE));
  const rawBytes = fileBytes * PACKAGES * FILES_PER_PACKAGE;
  const adminUrl = process.env['DATABASE_URL'] ?? testDatabaseUrl();
  const dbName = `ccat_bench_pipeline_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  const dbUrl = u.toString();
  const database = createDatabase({ connectionString: dbUrl, max: 2, applicationName: 'ccat-bench' });
  const redis = await connectTestRedis();
  const keyPrefix = uniquePrefix('bench_pipeline');
  const work = await mkdtemp(join(tmpdir(), 'ccat-bench-pipeline-'));
  const children: ChildProcess[] = [];
  try {
    const db = database.db;
    await migrateToLatest(db);
    heading(
      `main job on real files: ${PACKAGES} raw data packages of ${FILES_PER_PACKAGE} files of ${fmt(fileBytes / 2 ** 20)} MiB (${fmt(rawBytes / 1e9)} GB), bundles of ${BUNDLE}`,
    );
    console.log(
      `  (seeding under ${work}; ours: ${WORKERS} worker processes, concurrency ${CONCURRENCY}; shell: ${PAR} at once per stage)`,
    );
    console.log(describePrepared());
    const locations = await seedSites(db, join(work, 'ours'));
    await seedRawPackages(db, locations, {
      packages: PACKAGES,
      filesPerPackage: FILES_PER_PACKAGE,
      minFileBytes: fileBytes,
      maxFileBytes: fileBytes,
      source: 'cha/primecam-raw',
      buffer: 'cha/cha-buffer',
      prefix: 'obs',
    });
    // Held until both sides are ready: nothing is due before the clock starts.
    await sql`UPDATE raw_data_packages SET next_attempt_at = 'infinity'`.execute(db);

    // The baseline's copy of the same files, its manifest and the same bundles (the dispatcher
    // bundles completed packages in id order, i.e. name order here).
    const base = join(work, 'shell');
    await cp(locations.byName.get('cha/primecam-raw')!.root, join(base, 'src'), { recursive: true });
    await mkdir(join(base, 'manifest'));
    await mkdir(join(base, 'bundles'));
    const files = await db
      .selectFrom('raw_data_files as f')
      .innerJoin('raw_data_packages as r', 'r.id', 'f.raw_data_package_id')
      .select(['r.name', 'f.relative_path', 'f.sha256'])
      .orderBy('r.id')
      .orderBy('f.relative_path')
      .execute();
    const names = [...new Set(files.map((f) => f.name))];
    for (const n of names) {
      const lines = files.filter((f) => f.name === n).map((f) => `${f.sha256}  files/${f.relative_path}\n`);
      await writeFile(join(base, 'manifest', `${n}.files`), lines.join(''));
    }
    for (let b = 0; b < names.length / BUNDLE; b++)
      await writeFile(
        join(base, 'bundles', `tp-${b + 1}`),
        names.slice(b * BUNDLE, (b + 1) * BUNDLE).join('\n') + '\n',
      );

    // Baseline.
    const shellStart = performance.now();
    const shell = await new Promise<{ code: number | null; out: string; err: string }>((resolve, reject) => {
      const child = spawn('bash', [BASELINE_SH, base, String(PAR)], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, out, err }));
    });
    const shellMs = performance.now() - shellStart;
    if (shell.code !== 0) throw new Error(`baseline.sh failed (exit ${shell.code}): ${shell.err}`);
    const shellCpuMs = parseTimes(shell.out);
    await rm(base, { recursive: true, force: true });

    // Ours: real worker processes, started before the clock, then the packages made due.
    const config = (i: number): WorkerConfigInput => ({
      workerId: `bench-${i}`,
      database: { url: dbUrl, poolSize: 4, preparedStatements: preparedStatements() },
      redis: { url: testRedisUrl() },
      keyPrefix,
      concurrency: CONCURRENCY,
      dispatcher: { intervalMs: 200, bundleSize: BUNDLE, bundleMaxWaitMs: 600_000 },
      http: { port: null },
      log: { level: 'info', pretty: false },
    });
    const logs: string[] = [];
    for (let i = 0; i < WORKERS; i++) {
      const file = join(work, `worker-${i}.json`);
      const log = join(work, `worker-${i}.log`);
      await writeFile(file, JSON.stringify(config(i)));
      const out = createWriteStream(log);
      // Configured by their file alone.
      const env: Record<string, string> = { PATH: process.env['PATH'] ?? '/usr/bin:/bin' };
      const child = spawn(process.execPath, [...NODE_ARGS, WORKER_MAIN, '--config', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env,
      });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      children.push(child);
      logs.push(log);
    }
    for (const log of logs)
      await waitFor(
        `${log}: worker started`,
        async () => ((await readFile(log, 'utf8')).includes('"worker started"') ? true : undefined),
        60_000,
      );
    const cpuBefore = children.map((c) => processCpuMs(c.pid!));
    const pgBefore = await backendCpuMs(admin, dbName);
    const oursStart = performance.now();
    await sql`UPDATE raw_data_packages SET next_attempt_at = now()`.execute(db);
    const expectedCopies = 2 * PACKAGES + PACKAGES / BUNDLE;
    await waitFor(
      'every copy deleted',
      async () => {
        const r = await sql<{ done: number; failed: number }>`
          SELECT (SELECT count(*)::int FROM physical_copies WHERE status = 'completed') AS done,
            (SELECT count(*)::int FROM raw_data_packages WHERE status = 'failed')
            + (SELECT count(*)::int FROM data_transfer_packages WHERE status = 'failed')
            + (SELECT count(*)::int FROM data_transfers WHERE status = 'failed' OR unpack_status = 'failed')
            + (SELECT count(*)::int FROM long_term_archive_transfers WHERE status = 'failed')
            + (SELECT count(*)::int FROM physical_copies WHERE status = 'failed') AS failed`.execute(db);
        const row = r.rows[0]!;
        if (row.failed > 0)
          throw new Error(`pipeline bench: ${row.failed} operations failed (see ${work}/worker-*.log)`);
        return row.done === expectedCopies ? true : undefined;
      },
      TIMEOUT_MS,
    );
    const oursMs = performance.now() - oursStart;
    const cpuAfter = children.map((c) => processCpuMs(c.pid!));
    const pgAfter = await backendCpuMs(admin, dbName);
    const workerCpuMs = cpuAfter.reduce((s, v, i) => s + v - cpuBefore[i]!, 0);
    const pgCpuMs = backendCpuDiff(pgBefore, pgAfter);

    const check = await sql<{ archived: number; bundles: number; transfers: number }>`
      SELECT (SELECT count(*)::int FROM long_term_archive_transfers WHERE status = 'completed' AND verified_at IS NOT NULL) AS archived,
        (SELECT count(*)::int FROM data_transfer_packages WHERE status = 'completed') AS bundles,
        (SELECT count(*)::int FROM data_transfers WHERE unpack_status = 'completed') AS transfers`.execute(
      db,
    );
    const c = check.rows[0]!;
    if (c.archived !== PACKAGES || c.bundles !== PACKAGES / BUNDLE || c.transfers !== PACKAGES / BUNDLE)
      throw new Error(`pipeline bench: unexpected final state ${JSON.stringify(c)}`);

    const mbps = (ms: number) => rawBytes / 1e6 / (ms / 1000);
    const perGb = (cpuMs: number) => cpuMs / 1000 / (rawBytes / 1e9);
    const oursRate = report('ours: worker processes, package → delete', mbps(oursMs), 'MB/s');
    const shellRate = report('shell: tar, sha256sum, cp, tar -x, rm', mbps(shellMs), 'MB/s');
    ratio('ours / shell (throughput)', oursRate, shellRate, '>= 0.8');
    const oursCpu = report(
      'ours: CPU s per GB (workers + their PostgreSQL backends)',
      perGb(workerCpuMs + pgCpuMs),
      's/GB',
    );
    report('  of which the worker processes', perGb(workerCpuMs), 's/GB');
    report('  of which PostgreSQL backends of the bench database', perGb(pgCpuMs), 's/GB');
    const shellCpu = report(
      'shell: CPU s per GB (the shell and all its children)',
      perGb(shellCpuMs),
      's/GB',
    );
    ratio('ours / shell (CPU per GB; lower is better)', oursCpu, shellCpu);
    console.log(
      `  (wall: ours ${fmt(oursMs / 1000)} s, shell ${fmt(shellMs / 1000)} s; check: ${c.archived} packages archived and verified, ${expectedCopies} copies deleted)`,
    );
  } finally {
    for (const child of children) {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(20_000)]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    }
    await deleteKeysWithPrefix(redis, keyPrefix);
    redis.disconnect();
    await database.close();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
