// The start of a service before its work: probes answer first, an unreachable database or Redis is
// waited for (never thrown), close() during the wait ends it, a refused configuration throws.
import { ConfigurationError } from '@ccat/errors';
import { captureLogs, connectTestRedis, waitFor, WARN } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServing, type HttpServer, type ServingOptions } from '../src/index.js';

const registry = { contentType: 'text/plain', metrics: () => Promise.resolve('') };
const refused = () =>
  Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
const migrated = () => Promise.resolve({ upToDate: true, pending: [] });

describe('startServing', () => {
  let redis: Redis;
  beforeAll(async () => {
    redis = await connectTestRedis();
  });
  afterAll(() => redis.disconnect());

  const options = (
    o: Partial<ServingOptions> & Pick<ServingOptions, 'logger' | 'signal'>,
  ): ServingOptions => ({
    http: { host: '127.0.0.1', port: 0 },
    registry,
    healthDetails: () => ({ serviceId: 's1' }),
    migrations: migrated,
    redis: { redis },
    working: () => false,
    schema: 'public',
    searchPath: () => Promise.resolve(),
    intervalMs: 20,
    ...o,
  });

  it('answers probes while it waits for an unreachable database, then starts once it is reachable', async () => {
    const { logger, lines } = captureLogs();
    const steps: string[] = [];
    let down = true;
    let http: HttpServer | undefined;
    const started = startServing(
      options({
        logger,
        signal: new AbortController().signal,
        migrations: () => (steps.push('migrations'), down ? refused() : migrated()),
        searchPath: () => (steps.push('searchPath'), Promise.resolve()),
        listening: (server) => void (steps.push('listening'), (http = server)),
      }),
    );
    const url = `http://127.0.0.1:${(await waitFor(() => http)).port}`;
    const healthz = await fetch(`${url}/healthz`);
    expect([healthz.status, await healthz.json()]).toEqual([200, { status: 'ok', serviceId: 's1' }]);
    const readyz = await fetch(`${url}/readyz`);
    expect(readyz.status).toBe(503);
    expect(await readyz.json()).toMatchObject({ postgres: 'unreachable', redis: { redis: 'ready' } });
    await waitFor(() =>
      lines.some((l) => l.level === WARN && l.msg.startsWith('PostgreSQL is not reachable')),
    );
    down = false;
    expect(await started).toBe(true);
    expect(steps[0]).toBe('listening');
    expect(steps.at(-1)).toBe('searchPath');
    await http?.close();
  });

  it('waits for a Redis that is not there, and resolves false without throwing when aborted', async () => {
    const { logger, lines } = captureLogs();
    const stopping = new AbortController();
    // Never connected (lazyConnect): as a Redis that is down at start.
    const absent = new Redis({ host: '127.0.0.1', port: 1, lazyConnect: true });
    let listened: HttpServer | undefined | 'not called' = 'not called';
    try {
      const started = startServing(
        options({
          logger,
          signal: stopping.signal,
          http: { host: '127.0.0.1', port: null },
          redis: { redis, bull: absent },
          listening: (server) => void (listened = server),
        }),
      );
      await waitFor(() => lines.some((l) => l.msg.startsWith('Redis is not reachable')));
      expect(listened).toBeUndefined();
      stopping.abort();
      expect(await started).toBe(false);
    } finally {
      // Also when an assertion fails: no reconnect loop outlives the test.
      stopping.abort();
      absent.disconnect();
    }
  });

  it('throws a configuration error when the search path does not lead to the schema', async () => {
    const { logger } = captureLogs();
    const wrong = new ConfigurationError('search_path does not lead to "public"', { code: 'DB_SEARCH_PATH' });
    await expect(
      startServing(
        options({
          logger,
          signal: new AbortController().signal,
          http: { host: '127.0.0.1', port: null },
          searchPath: () => Promise.reject(wrong),
        }),
      ),
    ).rejects.toBe(wrong);
  });
});
