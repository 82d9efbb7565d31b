// ADVERSARY: a worker whose per-type progress timeout is longer than the monitor's bound plus
// deadlineSlackMs (e.g. archive tasks tracked with a 3 h progress timeout while the monitor keeps its
// 1 h default): the monitor quarantines the live task's member as `absurd-score` — ALL of it, the
// liveness deadline and details too — every pass. The worker re-registers it on its next beat (as the
// task runner does when the row is still its own), and reconciliation, seeing the member missing
// pass after pass, recovers the LIVE task. The worker/monitor mismatch is supposed to be only logged.
import { readOperation, type CcatDatabase } from '@ccat/db';
import { migratedDatabase, seedLocations, seedOperation, type TestLocations } from '@ccat/db/testing';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import {
  connectTestRedis,
  createTestSchema,
  deleteKeysWithPrefix,
  uniquePrefix,
  type TestSchema,
} from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createMonitorMetrics, Monitor, monitorConfigSchema } from '../src/index.js';

let schema: TestSchema;
let database: CcatDatabase;
let locations: TestLocations;
let redis: Redis;
const prefix = uniquePrefix('adv_pmis');

beforeAll(async () => {
  schema = await createTestSchema('adv_pmis');
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

it('a live task tracked with a longer progress timeout than the monitor knows is never recovered', async () => {
  const keyPrefix = `${prefix}1:`;
  const lines: { msg: string; level: number; [k: string]: unknown }[] = [];
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
  const id = await seedOperation(database.db, locations, 'long_term_archive_transfer', {
    status: 'in_progress',
    lastSeenAgoS: 0,
    claimedBy: 'live-worker',
  });
  const member = `long_term_archive_transfer:${id}:0`;
  const track = () => emitter.track(member, { progressTimeoutMs: 3 * 3_600_000 });
  // Shipped worker defaults, and the task runner's answer to a lost member whose row is still ours.
  const emitter: HeartbeatEmitter = new HeartbeatEmitter({
    redis,
    keyPrefix,
    intervalMs: 4000,
    timeoutMs: 12_000,
    onLost: async () => void (await track()),
  });
  await emitter.start();
  await track();
  m.start();
  try {
    await new Promise((r) => setTimeout(r, 40_000)); // an observation window over the live task
  } finally {
    await m.close();
    await emitter.close();
  }
  const quarantined = lines.filter((l) => l.msg === 'corrupt heartbeat entry').length;
  const row = await readOperation(database.db, 'long_term_archive_transfer', id);
  console.log(`quarantined ${quarantined} times; row now ${row?.status} attempt ${row?.attempt}`);
  expect(row).toMatchObject({ status: 'in_progress', attempt: 0 });
}, 60_000);
