// A process frozen while it holds a row lock (issue 13 adversary, F1): a worker stopped inside its
// completion transaction, or a monitor stopped mid-batch. Simulated by a session of this test's own
// that takes FOR UPDATE on in-progress rows and leaves its transaction open. The monitor must recover
// every other due stall in its normal pass, skip the locked rows without waiting (they stay due and
// are recovered once released), and never open more backends than its pool size, however long the
// lock is held beyond its statementTimeoutMs.
import { randomBytes } from 'node:crypto';
import { createDatabase, readOperation, type CcatDatabase } from '@ccat/db';
import type { TestDatabase } from '@ccat/db/testing';
import { HeartbeatEmitter, heartbeatKeys } from '@ccat/heartbeat';
import { builtinHandlers, createHandlerRegistry, type HandlerRegistry } from '@ccat/recovery-handlers';
import { within } from '@ccat/test-support';
import { sql } from 'kysely';
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, describe, expect } from 'vitest';
import type { MonitorConfigInput } from '../src/index.js';
import { monitorTest, type MonitorContext } from './support/monitor-fixture.js';

const logger = pino({ level: 'silent' });
const app = `mon-row-lock-${randomBytes(4).toString('hex')}`;
const POOL = 4;
const STATEMENT_TIMEOUT_MS = 1500;
const holders: pg.Client[] = [];

// `monitorDb`: the monitor's own pool, as the app makes it (a client-side statement bound, a pool size,
// an application_name the test counts backends by), apart from the fixture's pool on the same schema.
const it = monitorTest('mon_rowlock', { max: 4 }).extend(
  'monitorDb',
  { scope: 'file' },
  ({ schema }, { onCleanup }): CcatDatabase => {
    const monitorDb = createDatabase({
      connectionString: schema.url,
      schema: schema.schema,
      max: POOL,
      applicationName: app,
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    });
    onCleanup(() => monitorDb.close());
    return monitorDb;
  },
);
// This file's own sessions (the frozen processes' row locks), ended after its last test.
afterAll(async () => {
  for (const h of holders) await h.end().catch(() => undefined);
});

const config = (keyPrefix: string): MonitorConfigInput => ({
  keyPrefix,
  monitor: { livenessTimeoutMs: 3000, heartbeatIntervalMs: 1000, batchSize: 2000, progressStalls: false },
  recovery: { defaultMaxRetries: 3, backoff: { baseMs: 1000, maxMs: 1000 } },
});

// `oneByOne`: raw_data_package's handler without `table` takes the per-row path (a custom handler's).
const registry = (oneByOne: boolean): HandlerRegistry =>
  createHandlerRegistry(
    builtinHandlers().map(({ table, ...h }) =>
      table === 'raw_data_package' && oneByOne ? h : { ...h, ...(table !== undefined && { table }) },
    ),
  );

/** `count` in-progress raw_data_package rows whose heartbeat members are overdue. */
async function stalled(
  { schema, locations, redis }: Pick<MonitorContext, 'schema' | 'locations' | 'redis'>,
  keyPrefix: string,
  count: number,
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, claimed_by, started_at, last_seen_at)
    SELECT ${keyPrefix} || g, ${locations.source}, ${locations.buffer}, 'x', 'in_progress', 'w-frozen', now(), now()
    FROM generate_series(1, ${count}) g RETURNING id::text`.execute(schema.db);
  const ids = rows.map((r) => r.id);
  const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 10, timeoutMs: 20, logger });
  await emitter.start();
  await Promise.all(ids.map((id) => emitter.track(`raw_data_package:${id}:0`)));
  await emitter.close();
  await new Promise((r) => setTimeout(r, 50));
  return ids;
}

/** A session of its own (a frozen process) holding FOR UPDATE on `ids` until `release()`. */
async function hold(schema: TestDatabase, ids: readonly string[]): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: schema.url, options: `-c search_path=${schema.schema}` });
  holders.push(client);
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT id FROM raw_data_packages WHERE id = ANY($1::bigint[]) FOR UPDATE', [ids]);
  return { release: () => client.query('ROLLBACK').then(() => undefined) };
}

async function backends(schema: TestDatabase): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE application_name = ${app}`.execute(schema.db);
  return rows[0]!.n;
}

describe('a row lock held by a frozen process', () => {
  it.for([
    ['batched', false],
    ['one by one', true],
  ] as const)(
    '%s: the pass recovers every other stall, skips the locked rows, stays within its pool, recovers them once released',
    { timeout: 60_000 },
    async ([_, oneByOne], { setup: { prefix, schema, locations, redis, monitor }, monitorDb }) => {
      const keyPrefix = `${prefix}${oneByOne ? 'a' : 'b'}:`;
      const ids = await stalled({ schema, locations, redis }, keyPrefix, 300);
      const locked = [ids[7]!, ids[150]!, ids[299]!];
      const held = await hold(schema, locked);
      const m = monitor(config(keyPrefix), {
        monitorId: `mon-${oneByOne ? 'a' : 'b'}`,
        registry: registry(oneByOne),
        db: monitorDb.db,
      });
      let maxBackends = 0;
      try {
        const started = Date.now();
        const first = await within(m.runPass(), 20_000);
        const firstMs = Date.now() - started;
        expect(first).not.toBe('hung');
        expect(first === 'hung' || first instanceof Error ? first : first.recovered).toBe(
          300 - locked.length,
        );
        maxBackends = Math.max(maxBackends, await backends(schema));
        // Held well beyond the monitor's statementTimeoutMs: passes go on, none waits on the lock.
        const until = Date.now() + 3 * STATEMENT_TIMEOUT_MS;
        while (Date.now() < until) {
          const r = await within(m.runPass(), 20_000);
          expect(r).not.toBe('hung');
          expect(r === 'hung' || r instanceof Error ? r : r.recovered).toBe(0);
          maxBackends = Math.max(maxBackends, await backends(schema));
          await new Promise((res) => setTimeout(res, 200));
        }
        expect(maxBackends).toBeLessThanOrEqual(POOL);
        for (const id of locked)
          expect(await readOperation(schema.db, 'raw_data_package', id)).toMatchObject({
            status: 'in_progress',
            attempt: 0,
          });
        // Still due: their members stay.
        expect(await redis.zcard(heartbeatKeys({ keyPrefix }).deadlines)).toBe(locked.length);
        console.log(`first pass with ${locked.length} rows locked: ${firstMs} ms`);
      } finally {
        await held.release();
      }
      let recovered = 0;
      for (let pass = 0; pass < 20 && recovered < locked.length; pass++) {
        recovered += (await m.runPass()).recovered;
        if (recovered < locked.length) await new Promise((r) => setTimeout(r, 300));
      }
      await m.close();
      expect(recovered).toBe(locked.length);
      for (const id of locked)
        expect(await readOperation(schema.db, 'raw_data_package', id)).toMatchObject({
          status: 'pending',
          attempt: 1,
        });
      expect(await redis.zcard(heartbeatKeys({ keyPrefix }).deadlines)).toBe(0);
      expect(await backends(schema)).toBeLessThanOrEqual(POOL);
    },
  );
});
