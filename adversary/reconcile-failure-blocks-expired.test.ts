// ADVERSARY: one in-progress row with no heartbeat member whose recovery fails forever (a trigger
// raising an error) makes every pass throw in #reconcileType (no try/catch there), so #failures > 0
// and the next pass sets #expiredGraceUntil = now + liveness and skips the expired drain. The failure
// repeats every ~watch threshold + absent bound (< liveness), so NO expired member of ANY operation is
// ever recovered again. Shipped defaults (liveness 12 s, interval 4 s).
import { readOperation, type CcatDatabase } from '@ccat/db';
import { migratedDatabase, seedLocations, seedOperation, type TestLocations } from '@ccat/db/testing';
import { heartbeatKeys } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import {
  connectTestRedis,
  createTestSchema,
  deleteKeysWithPrefix,
  uniquePrefix,
  waitFor,
  type TestSchema,
} from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMonitorMetrics, Monitor, monitorConfigSchema } from '../src/index.js';

let schema: TestSchema;
let database: CcatDatabase;
let locations: TestLocations;
let redis: Redis;
const prefix = uniquePrefix('adv_recfail');

beforeAll(async () => {
  schema = await createTestSchema('adv_recfail');
  database = await migratedDatabase({ url: schema.url, schema: schema.schema });
  locations = await seedLocations(database.db);
  redis = await connectTestRedis();
});
afterAll(async () => {
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await database?.close();
  await schema?.drop();
});

it('a reconciled row whose recovery always fails does not stop expired members of other rows from being recovered', async () => {
  const keyPrefix = `${prefix}1:`;
  const lines: { msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (m: string) => void lines.push(JSON.parse(m)) });
  const config = monitorConfigSchema.parse({ keyPrefix, monitor: {} }); // shipped defaults
  const m = new Monitor({
    db: database.db,
    redis,
    logger,
    config,
    monitorId: 'adv-monitor',
    recovery: { db: database.db, registry: createHandlerRegistry(), policy: config.recovery, logger },
    metrics: createMonitorMetrics(),
  });
  // Row A: died before its first beat (no member), and its recovery fails forever.
  const a = await seedOperation(database.db, locations, 'deletion', {
    status: 'in_progress',
    lastSeenAgoS: 60,
    claimedBy: 'dead-worker',
  });
  const fn = `adv_refuse_${a}`;
  await sql
    .raw(
      `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row % is cursed', OLD.id; END $$`,
    )
    .execute(database.db);
  await sql
    .raw(
      `CREATE TRIGGER ${fn} BEFORE UPDATE ON physical_copies FOR EACH ROW WHEN (OLD.id = ${a}) EXECUTE FUNCTION ${fn}()`,
    )
    .execute(database.db);
  try {
    m.start();
    // Row A is watched, then found missing for the absent bound, then its recovery throws: the pass fails.
    await waitFor(async () => lines.some((l) => l.msg === 'monitor pass failed'), {
      timeoutMs: 30_000,
      message: 'first failed pass',
    });
    // Now B's worker dies: its member is overdue from here on.
    // Row B: an ordinary dead task whose heartbeat member is expired.
    const b = await seedOperation(database.db, locations, 'unpack', {
      status: 'in_progress',
      lastSeenAgoS: 60,
      claimedBy: 'dead-worker',
    });
    const [s, us] = await redis.time();
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    const keys = heartbeatKeys({ keyPrefix });
    await redis
      .multi()
      .zadd(keys.deadlines, now - 1000, `unpack:${b}:0`)
      .hset(
        keys.details,
        `unpack:${b}:0`,
        JSON.stringify({ registeredAt: now - 20_000, emitterId: 'w:1', timeoutMs: 12_000 }),
      )
      .exec();
    const addedAt = Date.now();
    // B is overdue already: it should be recovered in the first pass, at worst within a few liveness bounds.
    await waitFor(async () => (await readOperation(database.db, 'unpack', b))?.status === 'pending', {
      timeoutMs: 45_000,
      message: 'expired row B recovered',
    });
    console.log(`B recovered ${Date.now() - addedAt} ms after its member was overdue`);
  } finally {
    await m.close();
    console.log(
      lines
        .filter((l) => /fail/.test(l.msg))
        .map((l) => `${l.msg} ${String(l['err'] ?? '')}`)
        .slice(0, 8)
        .join('\n'),
    );
    await sql.raw(`DROP TRIGGER IF EXISTS ${fn} ON physical_copies`).execute(database.db);
    await sql.raw(`DROP FUNCTION IF EXISTS ${fn}()`).execute(database.db);
  }
}, 60_000);
