// The README's "Running it", to the letter, on files this test creates: migrate, sites apply with the
// shipped examples/inventory.yaml (its /srv/ccat roots moved to a temporary directory), ingest, a
// worker and a monitor with the shipped examples/*.json, through their bins, until every operation of
// the pipeline completed; then SIGTERM, and both exit 0. The README's `createdb` is a fresh empty
// schema of the shared test database here (the server is shared; doc-claims.test.ts checks the step).
import { createTestDatabase } from '@ccat/db/testing';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase } from '@ccat/db';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  type JsonProcess,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@ccat/test-support';
import { afterAll, expect, it } from 'vitest';
import { readStats } from '../src/stats.js';
import { MONITOR_MAIN, runCli, WORKER_MAIN } from './support/system.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const f of cleanup.reverse()) await f();
});

it('README "Running it": an empty database to a completed pipeline on our own files', async () => {
  const schema = await createTestDatabase('running_it', { migrate: false, max: 1 });
  cleanup.push(() => schema.close());
  const prefix = uniquePrefix('running_it');
  const redis = await connectTestRedis();
  cleanup.push(async () => {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  });
  const dir = await mkdtemp(join(tmpdir(), 'ccat-running-it-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const env = {
    DATABASE_URL: schema.url,
    DATABASE_SCHEMA: schema.schema,
    REDIS_URL: testRedisUrl(),
    CCAT_KEY_PREFIX: prefix,
  };
  const cli = async (...args: string[]) => {
    const run = await runCli(args, env);
    expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
    return run;
  };

  const inventory = join(dir, 'inventory.yaml');
  const shipped = await readFile(join(EXAMPLES, 'inventory.yaml'), 'utf8');
  expect(shipped).toContain('/srv/ccat/cha/primecam-raw');
  await writeFile(inventory, shipped.replaceAll('/srv/ccat', dir));
  for (const loc of ['cha/primecam-raw', 'cha/cha-buffer', 'col/col-buffer', 'col/col-lta'])
    await mkdir(join(dir, loc), { recursive: true });
  const night = join(dir, 'cha/primecam-raw/night-1');
  await mkdir(night, { recursive: true });
  for (let i = 1; i <= 3; i++)
    await writeFile(join(night, `obs-${i}.fits`), `observation ${i}\n`.repeat(100 * i));

  await cli('migrate');
  expect((await cli('sites', 'apply', inventory)).stdout).toMatch(/created\s+location cha\/primecam-raw/);
  expect((await cli('ingest', 'cha/primecam-raw', night)).stdout).toContain(
    'raw_data_package night-1: 3 file(s)',
  );

  const processes: JsonProcess[] = [];
  cleanup.push(async () => {
    for (const p of processes) {
      p.signal('SIGKILL');
      await p.exited;
    }
  });
  const start = async (name: string, script: string, config: string, ready: string) => {
    const p = await startJsonProcess({
      name,
      script,
      args: ['--config', join(EXAMPLES, config)],
      env: { ...env, CCAT_CONFIG: '' },
      ready: (l) => l['msg'] === ready,
    });
    processes.push(p);
    return p;
  };
  const worker = await start('worker-1', WORKER_MAIN, 'worker.json', 'worker started');
  const monitor = await start('monitor-1', MONITOR_MAIN, 'monitor.json', 'monitor started');

  const database = createDatabase({ connectionString: schema.url, schema: schema.schema, max: 2 });
  cleanup.push(() => database.close());
  await waitFor(
    async () => {
      const stats = await readStats(database.db);
      const failed = Object.values(stats.stages).reduce((n, s) => n + s.failed, 0);
      if (failed > 0) {
        const errors = await database.db
          .selectFrom('operation_events')
          .select(['operation_type', 'event', 'error_code', 'message'])
          .where('error_code', 'is not', null)
          .execute();
        throw new Error(`failed operations: ${JSON.stringify(errors)}`);
      }
      return (
        stats.nonFinal === 0 && stats.unbundled === 0 && stats.stages.long_term_archive_transfer.done > 0
      );
    },
    { timeoutMs: 120_000, intervalMs: 500, message: 'every operation of the pipeline completed' },
  );
  const stats = await readStats(database.db);
  expect(stats.stages.raw_data_package.done).toBe(1);

  for (const p of [worker, monitor]) p.signal('SIGTERM');
  expect(await worker.exited).toBe(0);
  expect(await monitor.exited).toBe(0);
  // What an operator reads after the run (printed for the record; the checks are on their content).
  const status = await cli('status');
  expect(status.stdout).toMatch(/^Stuck now: none$/m);
  const failures = await cli('failures');
  expect(failures.stdout).toMatch(/^No failure events in the last 24h\.$/m);
  const raw = await database.db.selectFrom('raw_data_packages').select('id').executeTakeFirstOrThrow();
  const shown = await cli('show', 'raw_data_package', String(raw.id));
  expect(shown.stdout).toMatch(/^ {2}status:\s+completed$/m);
  console.log(
    `running-it: ccat-recovery status\n${status.stdout}\nrunning-it: ccat-recovery failures\n${failures.stdout}\n` +
      `running-it: ccat-recovery show raw_data_package ${raw.id}\n${shown.stdout}`,
  );
}, 180_000);
