// Helpers every integration test uses. A service that is down fails the test with the command that
// starts it; nothing is skipped.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';
export const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/** TEST_DATABASE_URL, else DATABASE_URL, else the loopback `test` database. */
export function testDatabaseUrl(): string {
  return process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? DEFAULT_TEST_DATABASE_URL;
}

/** TEST_REDIS_URL, else REDIS_URL, else loopback 6379. */
export function testRedisUrl(): string {
  return process.env['TEST_REDIS_URL'] ?? process.env['REDIS_URL'] ?? DEFAULT_TEST_REDIS_URL;
}

const START_PG = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
const START_REDIS =
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

/** A short unique token for names: label, pid and randomness, lower-case. */
export function uniqueName(label: string): string {
  const clean = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  return `${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

export interface TestSchema {
  /** The connection string (same database, the schema is separate). */
  readonly url: string;
  readonly schema: string;
  /** Drops the schema and everything in it. */
  drop(): Promise<void>;
}

/** Creates an empty schema of its own for one test file. Fails with how to start PostgreSQL when it is down. */
export async function createTestSchema(label: string, url = testDatabaseUrl()): Promise<TestSchema> {
  const schema = `t_${uniqueName(label)}`;
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    throw new Error(
      `PostgreSQL is not reachable at ${url} (${(e as Error).message}). Start it with: ${START_PG}, or set TEST_DATABASE_URL.`,
      { cause: e },
    );
  }
  try {
    await client.query(`CREATE SCHEMA ${schema}`);
  } finally {
    await client.end();
  }
  return {
    url,
    schema,
    async drop() {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A connected ioredis client; fails with how to start Redis when it is down. */
export async function connectTestRedis(url = testRedisUrl()): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 3000,
    retryStrategy: () => null,
  });
  try {
    await redis.connect();
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    throw new Error(
      `Redis is not reachable at ${url} (${(e as Error).message}). Start it with: ${START_REDIS}, or set TEST_REDIS_URL.`,
      { cause: e },
    );
  }
  return redis;
}

/** A key prefix of its own for one test file: `t:<label>_<pid>_<rand>:`. */
export function uniquePrefix(label: string): string {
  return `t:${uniqueName(label)}:`;
}

/** Deletes every key under a prefix (SCAN + UNLINK); for test cleanup only. */
export async function deleteKeysWithPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.unlink(...keys);
  } while (cursor !== '0');
  return deleted;
}

export { waitFor, type WaitOptions } from './wait.js';
export { duplicateJsonKeys } from './duplicate-keys.js';
export { captureLogs, ERROR, INFO, WARN, type LogLine } from './logs.js';
export { startJsonProcess, type JsonProcess, type StartOptions } from './process.js';
export { freePort, postgresUser, PrivatePostgres, PrivateRedis } from './private-servers.js';
export {
  parseMail,
  startSmtp,
  type ReceivedMail,
  type SmtpSession,
  type TestSmtp,
  type TestSmtpOptions,
} from './smtp.js';

/**
 * The environment a child command sees: this process's, without any CCAT_/DATABASE_/REDIS_/SMTP_/
 * SLACK_ variables (so the developer's shell cannot change the outcome), plus `env`.
 */
export function commandEnv(env: Record<string, string>): Record<string, string> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined || /^(CCAT_|DATABASE_|REDIS_|SMTP_|SLACK_)/.test(k)) continue;
    clean[k] = v;
  }
  return { ...clean, ...env };
}
