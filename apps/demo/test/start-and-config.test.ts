// Starting means something (issue 11, inputs 6, 7, 8), for real worker and monitor processes and the
// CLI: a configuration mistake is exit 2 with one line per problem and no stack trace; a port in use
// is exit 2 at once, before any work (no health key, nothing relayed); an unmigrated schema is not
// ready (/readyz 503 saying "run: ccat-recovery migrate", logged once) until it is migrated.
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, createPgOutboxStore, migrateToLatest, type CcatDatabase } from '@ccat/db';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  freePort,
  type JsonProcess,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
  waitFor,
} from '@ccat/test-support';
import { FATAL_UNHANDLED_MESSAGE } from '@ccat/service';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliEnv, MONITOR_MAIN, WORKER_MAIN } from './support/system.js';

let schema: TestDatabase;
let redis: Redis;
let dir: string;
const prefixes: string[] = [];
/** Schemas the migrations created (the fixture drops its own one). */
const extraSchemas: string[] = [];
const processes: JsonProcess[] = [];

beforeAll(async () => {
  schema = await createTestDatabase('start_cfg', { migrate: false, max: 1 });
  redis = await connectTestRedis();
  dir = await mkdtemp(join(tmpdir(), 'ccat-start-'));
});
afterEach(async () => {
  for (const p of processes.splice(0)) {
    p.signal('SIGKILL');
    await p.exited;
  }
});
afterAll(async () => {
  for (const p of prefixes) await deleteKeysWithPrefix(redis, p);
  redis?.disconnect();
  if (extraSchemas.length > 0) {
    const database = createDatabase({ connectionString: schema.url, max: 1 });
    for (const s of extraSchemas) await sql`DROP SCHEMA IF EXISTS ${sql.id(s)} CASCADE`.execute(database.db);
    await database.close();
  }
  await schema?.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly code: number | string | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a script to its end (killed after `timeoutMs`: a test failure, not a hang). */
function run(
  script: string,
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], {
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? signal, stdout, stderr });
    });
  });
}

const APPS = [
  { name: 'ccat-worker', script: WORKER_MAIN, args: [] as string[] },
  { name: 'ccat-monitor', script: MONITOR_MAIN, args: [] as string[] },
  { name: 'ccat-recovery', script: CLI, args: ['status'] },
] as const;

const BAD_CONFIG: readonly { env: Record<string, string>; lines: readonly RegExp[] }[] = [
  { env: { DATABASE_URL: 'not a url' }, lines: [/^ {2}database\.url: is not a URL/] },
  {
    env: { REDIS_URL: 'http://127.0.0.1:6379' },
    lines: [/^ {2}redis\.url: scheme must be redis: or rediss:/],
  },
  { env: { REDIS_URL: 'redis://127.0.0.1:99999' }, lines: [/^ {2}redis\.url: port out of range/] },
  // The database part goes to SELECT after connecting: before the check, the last-resort handler.
  {
    env: { REDIS_URL: 'redis://127.0.0.1:6379/abc' },
    lines: [/^ {2}redis\.url: database \(the path\) must be a number/],
  },
  {
    env: { DATABASE_URL: 'mysql://db.example:0/x' },
    lines: [/database\.url: scheme must be/, /database\.url: port out of range/],
  },
  {
    env: { DATABASE_SCHEMA: 'Bad-Schema' },
    lines: [/^ {2}database\.schema: must be a lower-case identifier/],
  },
  {
    env: { DATABASE_URL: 'postgres:///nohost', REDIS_URL: 'redis://h:6379x', DATABASE_SCHEMA: 'Bad-Schema' },
    lines: [/database\.url: has no host/, /redis\.url: port is not a number/, /database\.schema: must be/],
  },
];

describe('a configuration mistake', () => {
  for (const app of APPS) {
    it(`${app.name}: each bad URL or schema name is exit 2, one line per problem, no stack trace`, async () => {
      for (const bad of BAD_CONFIG) {
        const r = await run(app.script, app.args, { ...bad.env, CCAT_KEY_PREFIX: 'ccat-cfg-test:' });
        const what = `${app.name} with ${JSON.stringify(bad.env)}: ${r.stderr}`;
        expect(r.code, what).toBe(2);
        expect(r.stderr, what).not.toMatch(/^\s+at /m);
        expect(r.stderr, what).not.toMatch(/TypeError|ENOTFOUND|ENOENT/);
        const problems = r.stderr.split('\n').filter((l) => /^ {2}\S/.test(l));
        expect(problems, what).toHaveLength(bad.lines.length);
        for (const line of bad.lines)
          expect(
            problems.some((p) => line.test(p)),
            `${what}: ${String(line)}`,
          ).toBe(true);
      }
    }, 120_000);
  }
});

async function writeConfig(name: string, config: object): Promise<string> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return file;
}

const base = (prefix: string, port: number | null, schemaName = schema.schema) => ({
  database: { url: schema.url, schema: schemaName, poolSize: 3 },
  redis: { url: testRedisUrl() },
  keyPrefix: prefix,
  http: { port },
  log: { level: 'debug', pretty: false },
});
const monitorConfig = (prefix: string, port: number | null, schemaName?: string) => ({
  ...base(prefix, port, schemaName),
  monitor: { loopIntervalMs: 200, livenessTimeoutMs: 1500, heartbeatIntervalMs: 150, leaseMs: 500 },
  notifier: { relay: { pollIntervalMs: 100 } },
});
const workerConfig = (prefix: string, port: number | null, schemaName?: string) => ({
  ...base(prefix, port, schemaName),
  operationTypes: ['raw_data_package'],
  dispatcher: { intervalMs: 200 },
  shutdown: { graceMs: 200, closeTimeoutMs: 2000 },
});

describe('a port in use', () => {
  let holder: Server;
  let port: number;
  let database: CcatDatabase;
  beforeAll(async () => {
    holder = createServer();
    holder.listen(0, '127.0.0.1');
    await once(holder, 'listening');
    const address = holder.address();
    port = typeof address === 'object' && address !== null ? address.port : 0;
    database = createDatabase({ connectionString: schema.url, schema: schema.schema, max: 2 });
    await migrateToLatest(database.db, { schema: schema.schema });
  });
  afterAll(async () => {
    holder?.close();
    await database?.close();
  });

  for (const [name, script, config] of [
    ['ccat-monitor', MONITOR_MAIN, monitorConfig],
    ['ccat-worker', WORKER_MAIN, workerConfig],
  ] as const) {
    it(`${name}: exits 2 at once, classified, before any work: no health key, nothing relayed`, async () => {
      const prefix = uniquePrefix('portinuse');
      prefixes.push(prefix);
      const id = await createPgOutboxStore(database.db).enqueue({
        level: 'ERROR',
        eventKind: 'port_in_use_test',
        subject: 'must stay pending',
        body: 'a monitor that could not start must not relay this',
      });
      const file = await writeConfig(`${name}-port`, config(prefix, port));
      // 300 s was the old behaviour; a generous deadline, far below it, not a speed claim.
      const r = await run(script, ['--config', file], { CCAT_CONFIG: '' }, 60_000);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/could not start: .*already in use.*\[HTTP_LISTEN_FAILED\]/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).not.toMatch(/"msg":"(monitor|worker) started"/);
      // `ccat-recovery status` finds services by their health keys: none was written.
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
      const row = await database.db
        .selectFrom('notifications')
        .select(['status', 'attempts'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      expect(row).toEqual({ status: 'pending', attempts: 0 });
      await database.db.deleteFrom('notifications').where('id', '=', id).execute();
    }, 90_000);
  }
});

async function readyz(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: res.status, body: await res.text() };
}

describe('readiness on an unmigrated schema', () => {
  for (const [name, script, config, started] of [
    ['ccat-monitor', MONITOR_MAIN, monitorConfig, 'monitor started'],
    ['ccat-worker', WORKER_MAIN, workerConfig, 'worker started'],
  ] as const) {
    it(`${name}: /readyz 503 saying "run: ccat-recovery migrate" (logged once), 200 once migrated`, async () => {
      const fresh = `${schema.schema}_${name === 'ccat-worker' ? 'w' : 'm'}`;
      extraSchemas.push(fresh);
      const prefix = uniquePrefix('unmigrated');
      prefixes.push(prefix);
      const port = await freePort();
      const file = await writeConfig(`${name}-unmigrated`, config(prefix, port, fresh));
      const p = await startJsonProcess({
        name,
        script,
        args: ['--config', file],
        env: { CCAT_CONFIG: '' },
        ready: (l) => typeof l['msg'] === 'string' && l['msg'].includes('run: ccat-recovery migrate'),
      });
      processes.push(p);
      const notReady = await waitFor(
        () =>
          readyz(port).then(
            (r) => r,
            () => undefined,
          ),
        { timeoutMs: 20_000, message: '/readyz answers' },
      );
      expect(notReady.status).toBe(503);
      expect(JSON.parse(notReady.body)).toMatchObject({
        status: 'unavailable',
        postgres: 'not migrated',
        action: 'run: ccat-recovery migrate',
      });
      // Several polls later it has still said it once, and started nothing.
      await new Promise((r) => setTimeout(r, 5_000));
      expect(p.lines.filter((l) => String(l['msg']).includes('run: ccat-recovery migrate'))).toHaveLength(1);
      expect(p.lines.filter((l) => String(l['msg']).includes('does not exist'))).toEqual([]);
      expect(p.lines.some((l) => l['msg'] === started)).toBe(false);
      const database = createDatabase({ connectionString: schema.url, schema: fresh, max: 2 });
      try {
        await migrateToLatest(database.db, { schema: fresh });
      } finally {
        await database.close();
      }
      await p.waitForLine((l) => l['msg'] === started, 30_000, started);
      const ready = await waitFor(() => readyz(port).then((r) => (r.status === 200 ? r : undefined)), {
        timeoutMs: 20_000,
        message: '/readyz 200 once migrated',
      });
      expect(JSON.parse(ready.body)).toMatchObject({ status: 'ok', postgres: 'ok', working: true });
      p.signal('SIGTERM');
      expect(await p.exited).toBe(0);
    }, 90_000);
  }
});

describe('a signal while waiting for the schema', () => {
  for (const [name, script, config, started] of [
    ['ccat-monitor', MONITOR_MAIN, monitorConfig, 'monitor started'],
    ['ccat-worker', WORKER_MAIN, workerConfig, 'worker started'],
  ] as const) {
    it(`${name}: SIGTERM ends the wait with exit 0, nothing started`, async () => {
      const prefix = uniquePrefix('sigwait');
      prefixes.push(prefix);
      const file = await writeConfig(`${name}-sigwait`, config(prefix, null, `${schema.schema}_never`));
      const p = await startJsonProcess({
        name,
        script,
        args: ['--config', file],
        env: { CCAT_CONFIG: '' },
        ready: (l) => typeof l['msg'] === 'string' && l['msg'].includes('run: ccat-recovery migrate'),
      });
      processes.push(p);
      p.signal('SIGTERM');
      expect(await p.exited).toBe(0);
      expect(p.lines.some((l) => l['msg'] === started)).toBe(false);
      expect(await redis.keys(`${prefix}*`)).toEqual([]);
    }, 60_000);
  }
});

describe('the last-resort handler', () => {
  beforeAll(async () => {
    const database = createDatabase({ connectionString: schema.url, schema: schema.schema, max: 1 });
    await migrateToLatest(database.db, { schema: schema.schema }).finally(() => database.close());
  });

  for (const [name, script, config, started] of [
    ['ccat-monitor', MONITOR_MAIN, monitorConfig, 'monitor started'],
    ['ccat-worker', WORKER_MAIN, workerConfig, 'worker started'],
  ] as const) {
    for (const kind of ['uncaughtException', 'unhandledRejection'] as const) {
      it(`${name}: an ${kind} logs one fatal line with its classified code and exits 1`, async () => {
        // Preloaded into the real process: an error nothing handles, thrown when the test sends SIGUSR2.
        const crash = join(dir, `crash-${kind}.mjs`);
        await writeFile(
          crash,
          kind === 'uncaughtException'
            ? `process.on('SIGUSR2', () => setImmediate(() => { throw Object.assign(new Error('injected'), { code: 'ECONNRESET' }); }));\n`
            : `process.on('SIGUSR2', () => setImmediate(() => { void Promise.reject(new Error('injected rejection')); }));\n`,
        );
        const prefix = uniquePrefix('lastresort');
        prefixes.push(prefix);
        const file = await writeConfig(`${name}-${kind}`, config(prefix, null));
        const p = await startJsonProcess({
          name,
          script,
          args: ['--config', file],
          env: { CCAT_CONFIG: '', NODE_OPTIONS: `--import=${crash}` },
          ready: (l) => l['msg'] === started,
          readyTimeoutMs: 60_000,
        });
        processes.push(p);
        // Fired only once the process has started (SIGUSR2, which the preload listens for), so a slow
        // start on a loaded machine cannot make the error land before the handlers are installed.
        p.signal('SIGUSR2');
        expect(await p.exited).toBe(1);
        const fatal = p.lines.filter((l) => l['msg'] === FATAL_UNHANDLED_MESSAGE);
        expect(fatal).toHaveLength(1);
        expect(fatal[0]).toMatchObject({
          level: 60,
          kind,
          errorCode: kind === 'uncaughtException' ? 'CONNECTION_RESET' : 'UNKNOWN_ERROR',
        });
        expect(p.stderr()).toContain(FATAL_UNHANDLED_MESSAGE);
      }, 60_000);
    }
  }
});

describe('a database that does not exist', () => {
  for (const app of APPS) {
    it(`${app.name}: exit 2 naming it, at once, not ready-and-failing forever`, async () => {
      const url = new URL(schema.url);
      url.pathname = '/ccat_no_such_database';
      const r = await run(
        app.script,
        app.args,
        { DATABASE_URL: url.toString(), CCAT_KEY_PREFIX: 'ccat-nodb-test:', CCAT_HTTP__PORT: '0' },
        60_000,
      );
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(/database "ccat_no_such_database" does not exist \[DB_CONFIGURATION\]/);
      expect(r.stderr).not.toMatch(/^\s+at /m);
    }, 90_000);
  }
});
