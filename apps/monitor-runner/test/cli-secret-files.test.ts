// The CLI reads the secrets of a mounted Secret as the monitor does (DATABASE_URL_FILE, REDIS_URL_FILE,
// SMTP_PASSWORD_FILE, SLACK_TOKEN_FILE), so `kubectl exec deploy/ccat-monitor -- node dist/cli.js …`
// reaches the same database; an unreadable file is exit 2 naming the variable, not the path.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, runCliInProcess } from './support/cli-process.js';

let schema: TestDatabase;
let redis: Redis;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  // Left empty: the first test migrates it through the CLI.
  schema = await createTestDatabase('cli_secret_files', { migrate: false, max: 1 });
  redis = await connectTestRedis();
  dir = await mkdtemp(join(tmpdir(), 'ccat-cli-secrets-'));
  await writeFile(join(dir, 'database-url'), `${schema.url}\n`);
  await writeFile(join(dir, 'redis-url'), `${testRedisUrl()}\n`);
  env = {
    DATABASE_URL_FILE: join(dir, 'database-url'),
    REDIS_URL_FILE: join(dir, 'redis-url'),
    DATABASE_SCHEMA: schema.schema,
    CCAT_KEY_PREFIX: uniquePrefix('cli_secret_files'),
  };
});
afterAll(async () => {
  if (redis !== undefined) {
    await deleteKeysWithPrefix(redis, env['CCAT_KEY_PREFIX']!);
    redis.disconnect();
  }
  await schema?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the CLI with secrets as files', () => {
  it('migrates the database DATABASE_URL_FILE names', async () => {
    const run = await runCliInProcess(['migrate'], env);
    expectExit(run, 0);
    expect(run.stdout).toContain(`to schema "${schema.schema}"`);
  });

  it('an unreadable secret file: exit 2 naming the variable, never the path', async () => {
    const missing = join(dir, 'no-such-file');
    const run = await runCliInProcess(['status'], { ...env, SMTP_PASSWORD_FILE: missing });
    expectExit(run, 2);
    expect(run.stderr).toContain('cannot read the secret file that SMTP_PASSWORD_FILE names (ENOENT)');
    expect(run.stderr).not.toContain(missing);
  });
});
