// `pnpm demo` touches only what it created (issue 11, item 9). The caller's environment points at a
// live deployment of this test's own (a migrated schema with operation rows in various states, a key
// prefix with keys) through every variable the apps read; the demo runs, small, to the end; that
// deployment's rows and keys are byte for byte what they were.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  seedLocations,
  seedOperation,
  type TestDatabase,
  testDatabaseUrl,
} from '@ccat/db/testing';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHILD_BASE_VARIABLES, childEnvironment, ignoredCallerVariables } from '../src/environment.js';

const DEMO = fileURLToPath(new URL('../dist/main.js', import.meta.url));

let schema: TestDatabase;
let database: CcatDatabase;
let redis: Redis;
const prefix = uniquePrefix('demo_isolation');

beforeAll(async () => {
  schema = await createTestDatabase('demo_isolation');
  database = schema.database;
  const db = database.db;
  const locs = await seedLocations(db);
  // Operations a worker or a monitor would pick up at once: due, stalled, scheduled long ago.
  await seedOperation(db, locs, 'raw_data_package', { status: 'pending' });
  await seedOperation(db, locs, 'raw_data_package', { status: 'pending', nextAttemptInS: -60 });
  await seedOperation(db, locs, 'data_transfer', { status: 'in_progress', lastSeenAgoS: 3600 });
  await seedOperation(db, locs, 'unpack', { status: 'scheduled', scheduledAgoS: 3600 });
  await seedOperation(db, locs, 'long_term_archive_transfer', { status: 'pending' });
  await seedOperation(db, locs, 'deletion', { status: 'completed' });
  await seedOperation(db, locs, 'data_transfer_package', { status: 'failed' });
  redis = await connectTestRedis();
  await redis.set(`${prefix}hb:data_transfer:1`, JSON.stringify({ worker: 'ops-1' }));
  await redis.hset(`${prefix}worker:ops-1`, { host: 'ops', started: '2026-11-30T00:00:00Z' });
  await redis.rpush(`${prefix}bull:raw_data_package:wait`, '1', '2');
  await redis.zadd(`${prefix}bull:raw_data_package:delayed`, 1, '3');
});

afterAll(async () => {
  await schema?.close();
  if (redis) {
    await deleteKeysWithPrefix(redis, prefix);
    redis.disconnect();
  }
});

/** Every row of every table of the schema, as JSON text, sorted. */
async function dumpSchema(): Promise<Record<string, string[]>> {
  const tables = await sql<{ table_name: string }>`
    SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema.schema}
    ORDER BY table_name`.execute(database.db);
  const out: Record<string, string[]> = {};
  for (const { table_name } of tables.rows) {
    const rows = await sql<{ row: string }>`
      SELECT to_jsonb(t)::text AS row FROM ${sql.table(`${schema.schema}.${table_name}`)} t`.execute(
      database.db,
    );
    out[table_name] = rows.rows.map((r) => r.row).sort();
  }
  return out;
}

/** Every key under the prefix: its type, its serialized value (DUMP) and its time to live. */
async function dumpKeys(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const dumped = await redis.dumpBuffer(k);
      out[k] = `${await redis.type(k)} ${dumped?.toString('hex') ?? '-'} ttl ${await redis.pttl(k)}`;
    }
  } while (cursor !== '0');
  return out;
}

function runDemo(
  env: Record<string, string>,
  timeoutMs: number,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [DEMO, '--packages', '3', '--files', '1', '--workers', '1', '--timeout', '150'],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the demo did not end within ${timeoutMs} ms:\n${out.slice(-3000)}`));
    }, timeoutMs);
    child.on('error', (e) => (clearTimeout(timer), reject(e)));
    child.on('close', (code) => (clearTimeout(timer), resolve({ code, out })));
  });
}

describe('the demo', () => {
  it("leaves the caller's deployment alone: its rows and keys are unchanged, the demo's own run succeeds", async () => {
    const rowsBefore = await dumpSchema();
    const keysBefore = await dumpKeys();
    expect(Object.keys(keysBefore)).toHaveLength(4);
    expect(rowsBefore['raw_data_packages']?.length).toBeGreaterThan(1);

    const deployment = {
      DATABASE_URL: testDatabaseUrl(),
      DATABASE_SCHEMA: schema.schema,
      REDIS_URL: testRedisUrl(),
      CCAT_KEY_PREFIX: prefix,
      CCAT_DATABASE__SCHEMA: schema.schema,
      CCAT_WORKER_ID: 'ops-1',
      TEST_DATABASE_URL: testDatabaseUrl(),
      TEST_REDIS_URL: testRedisUrl(),
    };
    const base = childEnvironment(process.env);
    const { code, out } = await runDemo({ ...base, ...deployment }, 220_000);
    expect(out, out).toContain('RESULT: OK');
    expect(code, out).toBe(0);
    expect(out).toContain(`ignored from your environment: ${Object.keys(deployment).sort().join(', ')}`);

    expect(await dumpSchema()).toEqual(rowsBefore);
    expect(await dumpKeys()).toEqual(keysBefore);
  }, 240_000);
});

describe('childEnvironment', () => {
  it('passes what a process needs to run and nothing that configures an app', () => {
    const caller = {
      PATH: '/usr/bin',
      HOME: '/home/ops',
      TZ: 'UTC',
      NODE_OPTIONS: '--max-old-space-size=512',
      DATABASE_URL: 'postgres://ops@db/ccat',
      DATABASE_SCHEMA: 'ops',
      REDIS_URL: 'redis://cache',
      CCAT_KEY_PREFIX: 'ops:',
      CCAT_CONFIG: '/etc/ccat/worker.json',
      TEST_REDIS_URL: 'redis://x',
      SMTP_PASSWORD: 'secret',
      SLACK_TOKEN: 'xoxb',
      PGHOST: 'db',
      UNRELATED: 'x',
    };
    const env = childEnvironment(caller, { SLACK_TOKEN: 'chosen' });
    expect(env).toEqual({
      PATH: '/usr/bin',
      HOME: '/home/ops',
      TZ: 'UTC',
      NODE_OPTIONS: '--max-old-space-size=512',
      SLACK_TOKEN: 'chosen',
    });
    for (const k of Object.keys(env)) expect([...CHILD_BASE_VARIABLES, 'SLACK_TOKEN']).toContain(k);
    expect(ignoredCallerVariables(caller)).toEqual([
      'CCAT_CONFIG',
      'CCAT_KEY_PREFIX',
      'DATABASE_SCHEMA',
      'DATABASE_URL',
      'REDIS_URL',
      'SLACK_TOKEN',
      'SMTP_PASSWORD',
      'TEST_REDIS_URL',
    ]);
  });
});
