// Migrations and the schema behind a private PgBouncer in transaction mode (Debian's pgbouncer, its
// own port, in front of the shared PostgreSQL; a database of its own per case):
// - with `ignore_startup_parameters = options` the schema's search_path never reaches the server:
//   `migrate`, the apps (migrating at start or not) and the CLI refuse with one line naming
//   database.schema, and nothing is created in public;
// - concurrent `migrate`s through the pooler leave no advisory lock behind, and the next one is prompt;
// - an app migrating at start waits for a database that is not there yet, then migrates.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testDatabaseUrl } from '@ccat/db/testing';
import {
  commandEnv,
  freePort,
  startJsonProcess,
  testRedisUrl,
  uniqueName,
  uniquePrefix,
  type JsonProcess,
} from '@ccat/test-support';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { PrivatePgBouncer } from './support/pgbouncer.js';
import { MONITOR_MAIN, runCli, WORKER_MAIN } from './support/system.js';

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const cleanup: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => undefined);
}, 60_000);

async function query<R extends object>(url: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end();
  }
}

/** A database of its own (dropped at the end); its direct URL. */
async function freshDatabase(label: string): Promise<{ name: string; direct: string }> {
  const name = uniqueName(label);
  await query(testDatabaseUrl(), `CREATE DATABASE ${name}`);
  cleanup.push(() => query(testDatabaseUrl(), `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  const u = new URL(testDatabaseUrl());
  u.pathname = `/${name}`;
  return { name, direct: u.toString() };
}

async function bouncerFor(direct: string, settings: Record<string, string> = {}): Promise<PrivatePgBouncer> {
  const bouncer = await PrivatePgBouncer.start(direct, settings);
  cleanup.push(() => bouncer[Symbol.asyncDispose]());
  return bouncer;
}

/** Tables per schema of the database at `direct`, outside the system schemas. */
async function tablesBySchema(direct: string): Promise<Record<string, number>> {
  const rows = await query<{ schema: string; n: number }>(
    direct,
    `SELECT table_schema AS schema, count(*)::int AS n FROM information_schema.tables
     WHERE table_schema NOT IN ('pg_catalog', 'information_schema') GROUP BY table_schema`,
  );
  return Object.fromEntries(rows.map((r) => [r.schema, r.n]));
}

/** Runs an app to its end (killed after `timeoutMs`: code null); its exit code and stderr. */
function runApp(
  script: string,
  config: string,
  env: Record<string, string>,
  timeoutMs = 40_000,
): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, '--config', join(EXAMPLES, config)],
      { env: commandEnv(env), timeout: timeoutMs },
      (error, _stdout, stderr) =>
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr }),
    );
  });
}

/** The one stderr line naming database.schema, the observed schema and the cause. */
function expectSearchPathRefusal(stderr: string, schema: string): void {
  const lines = stderr
    .trim()
    .split('\n')
    .filter((l) => l.includes('database.schema'));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toContain(`database.schema is "${schema}"`);
  expect(lines[0]).toContain(`current schema is "public"`);
  expect(lines[0]).toMatch(/startup parameter "options".*ALTER ROLE/);
}

describe('behind PgBouncer in transaction mode', () => {
  it('with `options` ignored, a schema other than public is refused everywhere; nothing lands in public', async () => {
    const { name, direct } = await freshDatabase('ccat_pgb_path');
    const bouncer = await bouncerFor(direct, { ignore_startup_parameters: 'options' });
    const schema = 'adv_x';
    const env = {
      DATABASE_URL: bouncer.url(name),
      DATABASE_SCHEMA: schema,
      REDIS_URL: testRedisUrl(),
      CCAT_KEY_PREFIX: uniquePrefix('pgbpath'),
    };

    const migrate = await runCli(['migrate'], env);
    expect(migrate.code, migrate.stderr).toBe(2);
    expectSearchPathRefusal(migrate.stderr, schema);
    expect(await tablesBySchema(direct)).toEqual({});

    const migrating = await runApp(MONITOR_MAIN, 'monitor.json', { ...env, CCAT_DATABASE__MIGRATE: 'true' });
    expect(migrating.code, migrating.stderr).toBe(2);
    expectSearchPathRefusal(migrating.stderr, schema);
    expect(await tablesBySchema(direct)).toEqual({});

    // Migrated directly (the ledger and the tables in adv_x): the apps and the CLI through the
    // pooler would still run every statement in public.
    const direct_ = await runCli(['migrate'], { ...env, DATABASE_URL: direct });
    expect(direct_.code, direct_.stderr).toBe(0);
    const tables = await tablesBySchema(direct);
    expect(Object.keys(tables)).toEqual([schema]);
    for (const [script, config] of [
      [WORKER_MAIN, 'worker.json'],
      [MONITOR_MAIN, 'monitor.json'],
    ] as const) {
      const run = await runApp(script, config, env);
      expect(run.code, `${script}: ${run.stderr}`).toBe(2);
      expectSearchPathRefusal(run.stderr, schema);
    }
    const failures = await runCli(['failures'], env);
    expect(failures.code, failures.stderr).toBe(2);
    expectSearchPathRefusal(failures.stderr, schema);
    expect(await tablesBySchema(direct)).toEqual(tables);
  }, 240_000);

  it('concurrent migrates leave no advisory lock held, and the next migrate is prompt', async () => {
    const { name, direct } = await freshDatabase('ccat_pgb_lock');
    // Round robin: consecutive transactions of one client land on different server connections
    // (as they do under load), so a session-level lock is taken on one and released on another.
    const bouncer = await bouncerFor(direct, { server_round_robin: '1' });
    const env = { DATABASE_URL: bouncer.url(name), REDIS_URL: testRedisUrl() };
    const runs = await Promise.all([1, 2, 3].map(() => runCli(['migrate'], env)));
    for (const r of runs) expect(r.code, r.stderr).toBe(0);
    expect(runs.filter((r) => r.stdout.includes('applied 0001-initial'))).toHaveLength(1);
    const locks = await query<{ n: number }>(
      direct,
      `SELECT count(*)::int AS n FROM pg_locks l JOIN pg_database d ON d.oid = l.database
       WHERE l.locktype = 'advisory' AND d.datname = $1`,
      [name],
    );
    expect(locks[0]?.n).toBe(0);
    const started = Date.now();
    const again = await runCli(['migrate'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('already at the latest');
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 120_000);

  it('an app migrating at start waits for a database that is not there yet, then migrates and starts', async () => {
    const { name, direct } = await freshDatabase('ccat_pgb_late');
    // Nothing listens on this port until the pooler starts on it.
    const port = await freePort();
    const processes: JsonProcess[] = [];
    cleanup.push(async () => {
      for (const p of processes) {
        p.signal('SIGKILL');
        await p.exited;
      }
    });
    const monitor = await startJsonProcess({
      name: 'pgb-late-monitor',
      script: MONITOR_MAIN,
      args: ['--config', join(EXAMPLES, 'monitor.json')],
      env: commandEnv({
        DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/${name}`,
        REDIS_URL: testRedisUrl(),
        CCAT_KEY_PREFIX: uniquePrefix('pgblate'),
        CCAT_DATABASE__MIGRATE: 'true',
      }),
      inheritEnv: false,
      ready: (l) => l['msg'] === 'PostgreSQL is not reachable; waiting for it before migrating',
      readyTimeoutMs: 30_000,
    });
    processes.push(monitor);
    // Still waiting a while later, logged once.
    await new Promise((r) => setTimeout(r, 3_000));
    const waiting = monitor.lines.filter((l) => String(l['msg']).includes('waiting for it before migrating'));
    expect(waiting, monitor.stderr()).toHaveLength(1);
    expect(monitor.child.exitCode, monitor.stderr()).toBeNull();

    await bouncerFor(direct, { listen_port: String(port) });
    await monitor.waitForLine((l) => l['msg'] === 'monitor started', 60_000, 'monitor started');
    expect(Object.keys(await tablesBySchema(direct))).toEqual(['public']);
    monitor.signal('SIGTERM');
    expect(await monitor.exited, monitor.stderr()).toBe(0);
  }, 120_000);
});
