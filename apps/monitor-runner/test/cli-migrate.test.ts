// `ccat-recovery migrate` on an empty schema of its own, and what the other commands say before and
// after: a schema without migrations is a configuration problem (exit 2), not a crash.
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { connectTestRedis, deleteKeysWithPrefix, testRedisUrl, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectExit, parseJsonOutput, runCliInProcess, runCliProcess } from './support/cli-process.js';

let schema: TestDatabase;
let redis: Redis;
let env: Record<string, string>;
const cli = (...args: string[]) => runCliProcess(args, env);
/** In-process, for variants of what a process run already showed. */
const inProcess = (...args: string[]) => runCliInProcess(args, env);

beforeAll(async () => {
  schema = await createTestDatabase('cli_migrate', { migrate: false, max: 1 });
  redis = await connectTestRedis();
  env = {
    DATABASE_URL: schema.url,
    DATABASE_SCHEMA: schema.schema,
    REDIS_URL: testRedisUrl(),
    CCAT_KEY_PREFIX: uniquePrefix('cli_migrate'),
  };
});

afterAll(async () => {
  if (redis !== undefined) {
    await deleteKeysWithPrefix(redis, env['CCAT_KEY_PREFIX']!);
    redis.disconnect();
  }
  await schema?.close();
});

describe('migrate', () => {
  it('refuses to read an unmigrated schema, applies every migration once, then reports nothing to do', async () => {
    const [status, failures] = await Promise.all([cli('status'), inProcess('failures')]);
    for (const run of [status, failures]) {
      expectExit(run, 2);
      expect(run.stderr).toContain(`schema "${schema.schema}"`);
      expect(run.stderr).toContain('has no CCAT migrations applied');
      expect(run.stderr).toContain('ccat-recovery migrate');
    }

    const first = await cli('migrate');
    expectExit(first, 0);
    expect(first.stderr).toBe('');
    expect(first.stdout).toMatch(
      new RegExp(
        `^migrations: applied 0001-initial, 0002-outbox-digests, 0003-stall-count to schema "${schema.schema}" on postgres://`,
        'm',
      ),
    );

    const [again, report, emptyStatus] = await Promise.all([
      cli('migrate', '--json'),
      inProcess('report'),
      inProcess('status', '--json'),
    ]);
    expectExit(again, 0);
    expect(parseJsonOutput(again)).toEqual({
      command: 'migrate',
      schema: schema.schema,
      applied: [],
      latest: '0003-stall-count',
      known: ['0001-initial', '0002-outbox-digests', '0003-stall-count'],
    });
    // An empty window: ratios are n/a, not 0% or NaN.
    expectExit(report, 0);
    expect(report.stdout).toMatch(
      /Recovery success rate:\s+n\/a\s+\(0 completed of the 0 of them that settled: none yet\)/,
    );
    expect(report.stdout).toMatch(/Retries per completed operation:\s+n\/a/);
    expect(report.stdout).toContain('Events in the window: none');
    expect(report.stdout).not.toContain('WARNING');
    expectExit(emptyStatus, 0);
    const doc = parseJsonOutput(emptyStatus);
    expect(doc.counts.all.total).toBe(0);
    expect(doc.inFlight).toEqual({ total: 0, tasks: [] });
    expect(doc.services).toEqual([]);
  });
});
