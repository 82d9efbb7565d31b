// Helpers every integration test uses. A service that is down fails the test with the command that
// starts it; nothing is skipped. The PostgreSQL test fixture is @ccat/db/testing's createTestDatabase
// (it migrates, which this package cannot: @ccat/db's own tests depend on this one).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

const DEFAULT_TEST_REDIS_URL = 'redis://127.0.0.1:6379';

/** TEST_REDIS_URL, else REDIS_URL, else loopback 6379. */
export function testRedisUrl(): string {
  return process.env['TEST_REDIS_URL'] ?? process.env['REDIS_URL'] ?? DEFAULT_TEST_REDIS_URL;
}

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

export { waitFor, within } from './wait.js';
export { duplicateJsonKeys } from './duplicate-keys.js';
export { captureLogs, ERROR, INFO, WARN } from './logs.js';
export { startJsonProcess, type JsonProcess } from './process.js';
export { freePort, postgresUser, PrivatePostgres, PrivateRedis } from './private-servers.js';
export { PrivateRedisCluster, PrivateRedisSentinel } from './redis-topologies.js';
export { parseMail, startSmtp, type ReceivedMail, type TestSmtp } from './smtp.js';

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
export {
  dockerStages,
  dockerTarget,
  kustomize,
  REPO_ROOT,
  targetPackageDir,
  type K8sObject,
} from './deploy.js';
export { dashboardExpressions, metricNames, RULE_TESTS_DIR, RULES_FILE, shippedRules } from './prometheus.js';
