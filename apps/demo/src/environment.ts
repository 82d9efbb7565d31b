// What the demo owns for its run: a database of its own (created and dropped), a Redis key prefix of
// its own (deleted), a temporary directory for the data locations and the process logs, and the
// environment of its child processes. A private redis-server or PostgreSQL cluster, when chaos or
// the fault suite needs one, and the SMTP server are @ccat/test-support's.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * The variables of the caller's environment a demo child needs to run at all: where programs are,
 * the home directory, language and time zone, the temporary directory, Node's own options. Nothing
 * else passes: the apps read DATABASE_URL, DATABASE_SCHEMA, REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN
 * and every CCAT_ variable over their config file, so a caller's deployment settings would point the
 * demo's fault-injecting workers at that deployment (issue 11, item 9).
 */
export const CHILD_BASE_VARIABLES = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  'NODE_OPTIONS',
] as const;

/**
 * A demo child's environment, built from scratch: the {@link CHILD_BASE_VARIABLES} the caller has,
 * plus `own` (the child's own settings, e.g. a Slack token the demo chose to pass). Never the
 * caller's configuration variables.
 */
export function childEnvironment(
  caller: Readonly<Record<string, string | undefined>>,
  own: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of CHILD_BASE_VARIABLES) {
    const value = caller[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...own };
}

/**
 * The caller's variables that would configure a worker or monitor (and the test helpers) if they
 * were passed on, sorted: the demo says it ignores them, so nobody wonders whether they applied.
 */
export function ignoredCallerVariables(caller: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(caller)
    .filter(
      (k) =>
        caller[k] !== undefined &&
        (/^(CCAT_|TEST_)/.test(k) ||
          ['DATABASE_URL', 'DATABASE_SCHEMA', 'REDIS_URL', 'SMTP_PASSWORD', 'SLACK_TOKEN'].includes(k)),
    )
    .sort();
}

/** A database the demo created for itself; `drop()` removes it, closing any connection still open. */
export interface DemoDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

/**
 * Runs `fn` on a short-lived client of `adminUrl` and ends it. The connect and every query are bounded
 * (5 s, 30 s), and a connection that drops while idle is ignored (the client is ended right after):
 * the demo's admin statements (create, drop, terminate backends) fail with an error instead of
 * hanging or killing the demo.
 */
async function withAdminClient<T>(adminUrl: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({
    connectionString: adminUrl,
    connectionTimeoutMillis: 5000,
    query_timeout: 30_000,
  });
  c.on('error', () => undefined); // a failed query rejects on its own; an idle drop needs no action
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Creates `ccat_demo_<pid>_<random>` next to the database DATABASE_URL names. */
export async function createDemoDatabase(adminUrl: string): Promise<DemoDatabase> {
  const name = `ccat_demo_${process.pid}_${randomBytes(3).toString('hex')}`;
  await withAdminClient(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      await withAdminClient(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/** Terminates every backend connected to `database` except our own: "dropped PostgreSQL connections". */
export async function dropConnections(adminUrl: string, database: string): Promise<number> {
  return withAdminClient(adminUrl, async (c) => {
    const r = await c.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    return r.rows[0]?.n ?? 0;
  });
}

/** A temporary directory `ccat-demo-*` for data locations and logs; `remove()` deletes it and all inside. */
export async function makeWorkDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'ccat-demo-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
