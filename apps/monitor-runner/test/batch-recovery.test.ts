// Batched stall recovery (issue 13.3) through the Monitor: a large batch of stalls of built-in types
// recovered in chunks, a custom handler's type still one by one, and two monitors racing over the
// same stalls recovering each exactly once.
import { readOperation, type CcatDatabase } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { HeartbeatEmitter, heartbeatKeys } from '@ccat/heartbeat';
import { builtinHandlers, createHandlerRegistry } from '@ccat/recovery-handlers';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect } from 'vitest';
import type { MonitorConfigInput } from '../src/index.js';
import { monitorTest, type MonitorContext } from './support/monitor-fixture.js';

const logger = pino({ level: 'silent' });
const it = monitorTest('mon_batch', { max: 10 });
let n = 0;

function config(keyPrefix: string, leaseMs = 10_000): MonitorConfigInput {
  return {
    keyPrefix,
    monitor: {
      livenessTimeoutMs: 3000,
      heartbeatIntervalMs: 1000,
      batchSize: 2000,
      progressStalls: false,
      leaseMs,
    },
    recovery: { defaultMaxRetries: 3, backoff: { baseMs: 1000, maxMs: 1000 } },
  };
}

/** `count` in-progress raw_data_package rows (one statement) whose heartbeat members are overdue. */
async function stalled(
  { database, locations, redis }: Pick<MonitorContext, 'database' | 'locations' | 'redis'>,
  keyPrefix: string,
  count: number,
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, claimed_by, started_at, last_seen_at)
    SELECT ${keyPrefix} || g, ${locations.source}, ${locations.buffer}, 'x', 'in_progress', 'w-dead', now(), now()
    FROM generate_series(1, ${count}) g RETURNING id::text`.execute(database.db);
  const ids = rows.map((r) => r.id);
  await overdue(
    redis,
    keyPrefix,
    ids.map((id) => `raw_data_package:${id}:0`),
  );
  return ids;
}

async function overdue(redis: Redis, keyPrefix: string, members: readonly string[]): Promise<void> {
  const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 10, timeoutMs: 20, logger });
  await emitter.start();
  for (let i = 0; i < members.length; i += 1000)
    await Promise.all(members.slice(i, i + 1000).map((m) => emitter.track(m)));
  await emitter.close();
  await new Promise((r) => setTimeout(r, 50));
}

async function eventsPerOperation(
  database: CcatDatabase,
  ids: readonly string[],
): Promise<Map<number, number>> {
  const { rows } = await sql<{ per: number; ops: number }>`
    SELECT per, count(*)::int AS ops FROM (
      SELECT count(e.id)::int AS per FROM unnest(${ids}::bigint[]) AS o(id)
      LEFT JOIN operation_events e ON e.operation_id = o.id AND e.operation_type = 'raw_data_package'
        AND e.event = 'stall_recovered'
      GROUP BY o.id) x GROUP BY per`.execute(database.db);
  return new Map(rows.map((r) => [r.per, r.ops]));
}

describe('batched stall recovery', () => {
  it('recovers a large batch in chunks, one event and one outbox row each', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    const keyPrefix = `${prefix}${++n}:`;
    const ids = await stalled({ database, locations, redis }, keyPrefix, 3000);
    const m = monitor(config(keyPrefix), { monitorId: 'mon-a' });
    let recovered = 0;
    for (let pass = 0; pass < 10 && recovered < ids.length; pass++)
      recovered += (await m.runPass()).recovered;
    await m.close();
    expect(recovered).toBe(3000);
    expect(await eventsPerOperation(database, ids)).toEqual(new Map([[1, 3000]]));
    const { rows } = await sql<{ n: number; keys: number }>`
      SELECT count(*)::int AS n, count(DISTINCT dedup_key)::int AS keys FROM notifications
      WHERE operation_type = 'raw_data_package' AND operation_id = ANY(${ids}::bigint[])`.execute(
      database.db,
    );
    expect(rows[0]).toEqual({ n: 3000, keys: 1 });
    // Expired heartbeats of a process that ran them all: shared stalls, no retry used (issue 13.4).
    expect(await readOperation(database.db, 'raw_data_package', ids[0]!)).toMatchObject({
      status: 'pending',
      attempt: 1,
      retryCount: 0,
      stallCount: 1,
    });
    expect(await redis.zcard(heartbeatKeys({ keyPrefix }).deadlines)).toBe(0);
  });

  it('two monitors racing over the same 5 000 stalls recover each exactly once', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    const keyPrefix = `${prefix}${++n}:`;
    const ids = await stalled({ database, locations, redis }, keyPrefix, 5000);
    // A lease shorter than a pass, so the two passes overlap: only the fence keeps them apart.
    const [a, b] = [
      monitor(config(keyPrefix, 100), { monitorId: 'mon-a' }),
      monitor(config(keyPrefix, 100), { monitorId: 'mon-b' }),
    ];
    let recovered = 0;
    for (let pass = 0; pass < 10 && recovered < ids.length; pass++) {
      const [ra, rb] = await Promise.all([a.runPass(), b.runPass()]);
      recovered += ra.recovered + rb.recovered;
    }
    await Promise.all([a.close(), b.close()]);
    expect(recovered).toBe(5000);
    expect(await eventsPerOperation(database, ids)).toEqual(new Map([[1, 5000]]));
  });

  it('a type with a custom handler is still recovered one by one through that handler', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    const keyPrefix = `${prefix}${++n}:`;
    const calls: string[] = [];
    // The built-in one, wrapped: no `table`, so the monitor must take the per-row path.
    const handlers = builtinHandlers().map(({ table, ...h }) =>
      table !== 'unpack'
        ? { ...h, ...(table !== undefined && { table }) }
        : {
            ...h,
            recoverStalled: (...args: Parameters<typeof h.recoverStalled>) => {
              calls.push(args[1].id);
              return h.recoverStalled(...args);
            },
            // An expired heartbeat is a shared stall (issue 13.4): this one is the handler's path.
            recoverSharedStall: (...args: Parameters<NonNullable<typeof h.recoverSharedStall>>) => {
              calls.push(args[1].id);
              return h.recoverSharedStall!(...args);
            },
          },
    );
    const unpacks = await Promise.all(
      [1, 2, 3].map(() => seedOperation(database.db, locations, 'unpack', { status: 'in_progress' })),
    );
    const ids = await stalled({ database, locations, redis }, keyPrefix, 10);
    await overdue(
      redis,
      keyPrefix,
      unpacks.map((id) => `unpack:${id}:0`),
    );
    const m = monitor(config(keyPrefix), { monitorId: 'mon-c', registry: createHandlerRegistry(handlers) });
    expect((await m.runPass()).recovered).toBe(13);
    await m.close();
    expect(calls.sort()).toEqual([...unpacks].sort());
    expect(await eventsPerOperation(database, ids)).toEqual(new Map([[1, 10]]));
  });
});
