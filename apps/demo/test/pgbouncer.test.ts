// Issue 15 item 2: the apps at their shipped defaults behind a private PgBouncer in transaction
// mode (Debian's pgbouncer, its own port, trust auth) in front of the shared PostgreSQL. The
// pipeline runs to the end with nothing FAILED and nothing left in progress, and no database
// error at all is recorded; a schema other than public (set through the `options` startup
// parameter PgBouncer refuses) stops the process at start with one line naming database.schema.
//
// Migrations run against PostgreSQL directly here; pgbouncer-migrate.test.ts runs them through it.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase } from '@ccat/db';
import { testDatabaseUrl } from '@ccat/db/testing';
import { classifyError } from '@ccat/errors';
import { sql } from 'kysely';
import {
  commandEnv,
  connectTestRedis,
  deleteKeysWithPrefix,
  startJsonProcess,
  testRedisUrl,
  uniqueName,
  uniquePrefix,
  waitFor,
  type JsonProcess,
} from '@ccat/test-support';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStats } from '../src/stats.js';
import { PrivatePgBouncer } from './support/pgbouncer.js';
import { MONITOR_MAIN, runCli, WORKER_MAIN } from './support/system.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const cleanup: (() => Promise<unknown>)[] = [];
let bouncer: PrivatePgBouncer;
let direct: string;
let pooled: string;
let dir: string;
const dbName = uniqueName('ccat_pgb');

async function admin(statement: string): Promise<void> {
  const client = new pg.Client({ connectionString: testDatabaseUrl(), connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    await client.query(statement);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  // A database of its own, so the shipped default schema (public) is ours alone.
  await admin(`CREATE DATABASE ${dbName}`);
  cleanup.push(() => admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`));
  const u = new URL(testDatabaseUrl());
  u.pathname = `/${dbName}`;
  direct = u.toString();
  bouncer = await PrivatePgBouncer.start(direct);
  cleanup.push(() => bouncer[Symbol.asyncDispose]());
  pooled = bouncer.url(dbName, decodeURIComponent(u.username || 'postgres'));
  dir = await mkdtemp(join(tmpdir(), 'ccat-pgbouncer-test-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
}, 60_000);

afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
}, 60_000);

describe('behind PgBouncer in transaction mode, at the shipped defaults', () => {
  it('the pipeline runs to the end: nothing FAILED, nothing in progress, no database error recorded', async () => {
    const prefix = uniquePrefix('pgbouncer');
    const redis = await connectTestRedis();
    cleanup.push(async () => {
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
    });
    const env = (url: string) => ({ DATABASE_URL: url, REDIS_URL: testRedisUrl(), CCAT_KEY_PREFIX: prefix });
    const cli = async (url: string, ...args: string[]) => {
      const run = await runCli(args, env(url));
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      return run;
    };
    await cli(direct, 'migrate');

    const inventory = join(dir, 'inventory.yaml');
    const shipped = await readFile(join(EXAMPLES, 'inventory.yaml'), 'utf8');
    await writeFile(inventory, shipped.replaceAll('/srv/ccat', dir));
    for (const loc of ['cha/primecam-raw', 'cha/cha-buffer', 'col/col-buffer', 'col/col-lta'])
      await mkdir(join(dir, loc), { recursive: true });
    // The CLI through the pooler too.
    await cli(pooled, 'sites', 'apply', inventory);
    for (let n = 1; n <= 3; n++) {
      const night = join(dir, `cha/primecam-raw/night-${n}`);
      await mkdir(night, { recursive: true });
      for (let i = 1; i <= 3; i++)
        await writeFile(join(night, `obs-${i}.fits`), `observation ${n}.${i}\n`.repeat(100 * i));
      await cli(pooled, 'ingest', 'cha/primecam-raw', night);
    }

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
        env: { ...env(pooled), CCAT_CONFIG: '' },
        ready: (l) => l['msg'] === ready,
      });
      processes.push(p);
      return p;
    };
    const workers = [
      await start('pgb-worker-1', WORKER_MAIN, 'worker.json', 'worker started'),
      await start('pgb-worker-2', WORKER_MAIN, 'worker.json', 'worker started'),
    ];
    const monitor = await start('pgb-monitor', MONITOR_MAIN, 'monitor.json', 'monitor started');

    const database = createDatabase({ connectionString: direct, max: 2 });
    cleanup.push(() => database.close());
    const errorEvents = () =>
      database.db
        .selectFrom('operation_events')
        .select(['operation_type', 'event', 'error_code', 'message'])
        .where('error_code', 'is not', null)
        .execute();
    await waitFor(
      async () => {
        const stats = await readStats(database.db);
        const failed = Object.values(stats.stages).reduce((n, s) => n + s.failed, 0);
        if (failed > 0) throw new Error(`failed operations: ${JSON.stringify(await errorEvents())}`);
        return (
          stats.nonFinal === 0 && stats.unbundled === 0 && stats.stages.long_term_archive_transfer.done > 0
        );
      },
      { timeoutMs: 150_000, intervalMs: 500, message: 'every operation of the pipeline completed' },
    );
    const stats = await readStats(database.db);
    expect(stats.stages.raw_data_package.done).toBe(3);
    // Not even a retried database error: nothing about the pooler reached an operation.
    expect(await errorEvents()).toEqual([]);
    for (const p of [...workers, monitor]) {
      const fatal = p.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 50);
      expect(fatal, p.name).toEqual([]);
    }

    for (const p of [...workers, monitor]) p.signal('SIGTERM');
    for (const p of [...workers, monitor]) expect(await p.exited, p.stderr()).toBe(0);
  }, 240_000);

  it('a schema other than public stops the process at start with one line naming database.schema', async () => {
    const run = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [WORKER_MAIN, '--config', join(EXAMPLES, 'worker.json')],
        {
          env: commandEnv({
            DATABASE_URL: pooled,
            DATABASE_SCHEMA: 'ccat_elsewhere',
            REDIS_URL: testRedisUrl(),
            CCAT_KEY_PREFIX: uniquePrefix('pgbschema'),
          }),
          timeout: 60_000,
        },
        (error, _stdout, stderr) =>
          resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr }),
      );
    });
    expect(run.code, run.stderr).toBe(2);
    const lines = run.stderr.trim().split('\n');
    expect(lines.filter((l) => l.includes('database.schema'))).toHaveLength(1);
    expect(run.stderr).toMatch(/unsupported startup parameter: options.*database\.schema "ccat_elsewhere"/);
  }, 90_000);

  it('prepared statements turned on anyway: the refused one fails retryable, the pool stops preparing and says so once', async () => {
    // One server connection for every client: a second client's Parse of the same name collides.
    await using single = await PrivatePgBouncer.start(direct, { default_pool_size: '1' });
    const refusals: Error[] = [];
    const database = createDatabase({
      connectionString: single.url(dbName),
      max: 2,
      preparedStatements: true,
      onPreparedStatementsRefused: (e) => refusals.push(e),
    });
    try {
      const query = (n: number) => sql<{ n: number }>`SELECT ${n}::int AS n`.execute(database.db);
      // Two connections of our pool at once: the first prepares, the second's Parse collides.
      const reason = await database.db
        .connection()
        .execute((a) =>
          database.db.connection().execute(async (b) => {
            await sql`SELECT ${1}::int AS n`.execute(a);
            await sql`SELECT ${1}::int AS n`.execute(b);
          }),
        )
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(reason, 'a second client preparing the same name behind one server connection').toBeDefined();
      const err = classifyError(reason);
      expect(err.code).toBe('DB_PREPARED_STATEMENT_CONFLICT');
      expect(err.retryable).toBe(true);
      expect(refusals).toHaveLength(1);
      // From now on nothing is prepared: every client runs every statement.
      for (let i = 0; i < 6; i++) expect((await query(i)).rows).toEqual([{ n: i }]);
      expect(refusals).toHaveLength(1);
    } finally {
      await database.close();
    }
  }, 60_000);
});
