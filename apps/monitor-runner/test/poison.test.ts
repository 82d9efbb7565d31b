// Poison heartbeat entries (issue 12 item 4), pass by pass in one process: entries whose details or
// scores cannot be trusted never keep a dead task's row in progress, and a member whose recovery
// keeps failing is retried with backoff and named in one ERROR notification.
import { setTimeout as delay } from 'node:timers/promises';
import { readOperation, type OperationType } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { HeartbeatEmitter, heartbeatKeys } from '@ccat/heartbeat';
import { waitFor } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { sql } from 'kysely';
import { pino } from 'pino';
import { describe, expect } from 'vitest';
import { createMonitorMetrics } from '../src/index.js';
import { monitorTest, type MonitorContext, type MonitorFactory } from './support/monitor-fixture.js';

const TIMEOUT_MS = 60_000;
const LIVENESS_MS = 3000;
const it = monitorTest('mon_poison');
let n = 0;

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [k: string]: unknown;
}

function poisonMonitor(monitor: MonitorFactory, keyPrefix: string, shipped = false) {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (m: string) => void lines.push(JSON.parse(m) as LogLine) },
  );
  const metrics = createMonitorMetrics();
  const m = monitor(
    {
      keyPrefix,
      monitor: shipped
        ? {}
        : {
            livenessTimeoutMs: LIVENESS_MS,
            heartbeatIntervalMs: 1000,
            progressTimeoutMs: TIMEOUT_MS,
            loopIntervalMs: 300_000,
            progressStalls: true,
          },
    },
    { monitorId: 'poison-monitor', logger, metrics },
  );
  return { m, lines, metrics };
}

const details = (at: number, extra: Record<string, unknown>) =>
  JSON.stringify({ registeredAt: at, emitterId: 'w:1', timeoutMs: TIMEOUT_MS, ...extra });

async function redisNow(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** A dead task's row (no sign of life for twice the timeout) and its poisoned heartbeat entry. */
async function deadTask(
  { database, locations, redis }: Pick<MonitorContext, 'database' | 'locations' | 'redis'>,
  keyPrefix: string,
  type: OperationType,
  entry: (now: number) => { score: number | string; details: string },
) {
  const id = await seedOperation(database.db, locations, type, {
    status: 'in_progress',
    lastSeenAgoS: (2 * TIMEOUT_MS) / 1000,
    claimedBy: 'dead-worker',
  });
  const member = `${type}:${id}:0`;
  const keys = heartbeatKeys({ keyPrefix });
  const e = entry(await redisNow(redis));
  await redis.multi().zadd(keys.deadlines, e.score, member).hset(keys.details, member, e.details).exec();
  return { id, member, keys };
}

describe('poison heartbeat entries', () => {
  const cases: [string, (now: number) => { score: number | string; details: string }][] = [
    [
      'workerId "bad\\u0000id"',
      (now) => ({ score: now - 1000, details: details(now, { workerId: 'bad\u0000id' }) }),
    ],
    ['workerId "\\ud800"', (now) => ({ score: now - 1000, details: details(now, { workerId: '\ud800' }) })],
    ['score +inf', (now) => ({ score: '+inf', details: details(now, { workerId: 'w-1' }) })],
    ['score 1e15', (now) => ({ score: 1e15, details: details(now, { workerId: 'w-1' }) })],
  ];
  for (const [name, entry] of cases) {
    it(`a dead task whose entry has ${name} is recovered, not left in progress`, async ({
      setup: { prefix, database, locations, redis, monitor },
    }) => {
      const keyPrefix = `${prefix}${++n}:`;
      const { m, metrics } = poisonMonitor(monitor, keyPrefix);
      const { id, member, keys } = await deadTask({ database, locations, redis }, keyPrefix, 'unpack', entry);
      // Quarantined members are recovered by reconciliation once they have been missing for a while.
      await waitFor(
        async () => {
          await m.runPass();
          return (await readOperation(database.db, 'unpack', id))?.status === 'pending';
        },
        { timeoutMs: 4 * LIVENESS_MS, message: 'row recovered' },
      );
      expect(await readOperation(database.db, 'unpack', id)).toMatchObject({ status: 'pending', attempt: 1 });
      expect(await redis.zscore(keys.deadlines, member)).toBeNull();
      expect((await metrics.recoveryFailures.get()).values.reduce((a, v) => a + v.value, 0)).toBe(0);
      const evs = await database.db
        .selectFrom('operation_events')
        .select(['event', 'context'])
        .where('operation_type', '=', 'unpack')
        .where('operation_id', '=', id)
        .execute();
      expect(evs.map((x) => x.event)).toEqual(['stall_recovered']);
      await m.close();
    });
  }

  it('a member whose recovery keeps failing is retried with backoff, not in a hot loop, and raises one ERROR naming it', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    const keyPrefix = `${prefix}${++n}:`;
    const { m, lines } = poisonMonitor(monitor, keyPrefix);
    const now = await redisNow(redis);
    const { id, member } = await deadTask({ database, locations, redis }, keyPrefix, 'deletion', () => ({
      score: now - 1000,
      details: details(now, { workerId: 'w-1' }),
    }));
    // A real PostgreSQL failure on every recovery of this one row.
    const fn = `refuse_${id}`;
    await sql
      .raw(
        `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'row % is cursed', OLD.id; END $$`,
      )
      .execute(database.db);
    await sql
      .raw(
        `CREATE TRIGGER ${fn} BEFORE UPDATE ON physical_copies FOR EACH ROW WHEN (OLD.id = ${id}) EXECUTE FUNCTION ${fn}()`,
      )
      .execute(database.db);
    const alerts = () =>
      database.db
        .selectFrom('notifications')
        .select(['level', 'subject', 'body', 'context'])
        .where('event_kind', '=', 'recovery_failing')
        .where('operation_id', '=', id)
        .execute();
    try {
      const startedAt = Date.now();
      m.start();
      // 1 s, 2 s, 4 s apart: the third failure comes about 3 s in, and with it the alert.
      await waitFor(async () => (await alerts()).length > 0, { timeoutMs: 20_000, message: 'ERROR alert' });
      // Then watch the loop for a while: an observation window, not a wait for a condition.
      await delay(Math.max(0, startedAt + 6000 - Date.now()));
      await m.close();
      const elapsedS = (Date.now() - startedAt) / 1000;
      const failures = lines.filter((l) => l.msg === 'stall recovery failed; retrying with backoff');
      console.log(`${failures.length} failed recoveries in ${elapsedS.toFixed(1)} s`);
      // A hot loop makes dozens a second (passes 20 ms apart: ~300 here). Backoff is full jitter
      // (a random delay up to 1 s, 2 s, 4 s …), so two retries may come close together by chance;
      // the bound is two a second, far from a hot loop and never reached by jitter in practice.
      expect(failures.length).toBeGreaterThanOrEqual(3);
      expect(failures.length).toBeLessThanOrEqual(Math.ceil(2 * elapsedS) + 2);
      expect(failures.every((l) => l['member'] === member)).toBe(true);
      const sent = await alerts();
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({ level: 'ERROR', context: { member, failures: 3 } });
      expect(sent[0]!.subject).toContain(id);
      expect(sent[0]!.body).toContain(member);
      expect(await readOperation(database.db, 'deletion', id)).toMatchObject({ status: 'in_progress' });
    } finally {
      await m.close();
      await sql.raw(`DROP TRIGGER IF EXISTS ${fn} ON physical_copies`).execute(database.db);
      await sql.raw(`DROP FUNCTION IF EXISTS ${fn}()`).execute(database.db);
    }
  }, 40_000);

  it("a worker whose liveness bound differs from the monitor's is reported once, naming it, with one WARNING", async ({
    setup: { prefix, database, redis, monitor },
  }) => {
    const keyPrefix = `${prefix}${++n}:`;
    const { m, lines } = poisonMonitor(monitor, keyPrefix);
    // A second monitor (a replica) sees the same worker: still one notification per dedup window.
    const { m: replica } = poisonMonitor(monitor, keyPrefix);
    const warnings = () =>
      database.db
        .selectFrom('notifications')
        .select(['level', 'subject', 'body', 'context', 'dedup_key'])
        .where('event_kind', '=', 'liveness_bounds_mismatch')
        .where('dedup_key', '=', 'liveness_bounds_mismatch:slow-worker')
        .execute();
    const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs: 1000, timeoutMs: 2 * LIVENESS_MS });
    try {
      await emitter.start();
      await emitter.track('unpack:901:0', { attributes: { workerId: 'slow-worker' } });
      await emitter.track('unpack:902:0', { attributes: { workerId: 'slow-worker' } });
      await m.runPass();
      await m.runPass();
      await replica.runPass();
      const reported = lines.filter((l) =>
        String(l.msg).startsWith("a worker's liveness bound is longer than monitor.livenessTimeoutMs"),
      );
      expect(reported).toHaveLength(1);
      expect(reported[0]).toMatchObject({
        level: 50,
        workerId: 'slow-worker',
        workerLivenessTimeoutMs: 2 * LIVENESS_MS,
        livenessTimeoutMs: LIVENESS_MS,
      });
      const sent = await warnings();
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatchObject({
        level: 'WARNING',
        context: {
          workerId: 'slow-worker',
          workerLivenessTimeoutMs: 2 * LIVENESS_MS,
          livenessTimeoutMs: LIVENESS_MS,
        },
      });
      expect(sent[0]!.subject).toContain('slow-worker');
    } finally {
      await emitter.close();
      await m.close();
      await replica.close();
    }
  });

  it('a row with no member whose recovery keeps failing does not hold back expired members of other rows', async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    // Shipped timings: liveness 12 s, beats every 4 s. Before, its recovery threw out of the pass,
    // and every failed pass held back expired members for another liveness bound: forever.
    const keyPrefix = `${prefix}${++n}:`;
    const { m, lines } = poisonMonitor(monitor, keyPrefix, true);
    // Died before its first beat (no member), and its recovery fails on every try.
    const a = await seedOperation(database.db, locations, 'deletion', {
      status: 'in_progress',
      lastSeenAgoS: 60,
      claimedBy: 'dead-worker',
    });
    const fn = `refuse_${a}`;
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
      const failed = ['stall recovery failed; retrying with backoff', 'monitor pass failed'];
      await waitFor(() => lines.some((l) => failed.includes(l.msg)), {
        timeoutMs: 40_000,
        message: "row A's first failed recovery",
      });
      // Another task dies now: its member is overdue at once.
      const { id: b } = await deadTask({ database, locations, redis }, keyPrefix, 'unpack', (now) => ({
        score: now - 1000,
        details: details(now, { workerId: 'w-1' }),
      }));
      await waitFor(async () => (await readOperation(database.db, 'unpack', b))?.status === 'pending', {
        timeoutMs: 30_000,
        message: 'the expired row recovered',
      });
      // Row A is retried with backoff and named in one ERROR; no pass failed because of it.
      await waitFor(
        async () =>
          (
            await database.db
              .selectFrom('notifications')
              .select('id')
              .where('event_kind', '=', 'recovery_failing')
              .where('operation_id', '=', a)
              .execute()
          ).length === 1,
        { timeoutMs: 30_000, message: 'ERROR naming row A' },
      );
      expect(lines.filter((l) => l.msg === 'monitor pass failed')).toEqual([]);
      expect(await readOperation(database.db, 'deletion', a)).toMatchObject({ status: 'in_progress' });
    } finally {
      await m.close();
      await sql.raw(`DROP TRIGGER IF EXISTS ${fn} ON physical_copies`).execute(database.db);
      await sql.raw(`DROP FUNCTION IF EXISTS ${fn}()`).execute(database.db);
    }
  }, 120_000);

  it("a live task tracked with a longer progress bound than the monitor's is not recovered", async ({
    setup: { prefix, database, locations, redis, monitor },
  }) => {
    // The worker's progress bound (3 h) is beyond the monitor's (60 s) + deadlineSlackMs (1 s): its
    // progress deadline looks absurd to this monitor. Before, the whole member was quarantined every
    // pass, the worker re-registered it, and reconciliation recovered the live task.
    const keyPrefix = `${prefix}${++n}:`;
    const lines: LogLine[] = [];
    const logger = pino(
      { level: 'debug' },
      { write: (l: string) => void lines.push(JSON.parse(l) as LogLine) },
    );
    const m = monitor(
      {
        keyPrefix,
        monitor: {
          livenessTimeoutMs: LIVENESS_MS,
          heartbeatIntervalMs: 1000,
          progressTimeoutMs: TIMEOUT_MS,
          deadlineSlackMs: 1000,
          loopIntervalMs: 300_000,
        },
      },
      { monitorId: 'poison-monitor', logger },
    );
    const id = await seedOperation(database.db, locations, 'long_term_archive_transfer', {
      status: 'in_progress',
      lastSeenAgoS: 0,
      claimedBy: 'live-worker',
    });
    const member = `long_term_archive_transfer:${id}:0`;
    const track = () => emitter.track(member, { progressTimeoutMs: 3 * 3_600_000 });
    // The task runner's answer to a lost member whose row is still its own: register again.
    const emitter: HeartbeatEmitter = new HeartbeatEmitter({
      redis,
      keyPrefix,
      intervalMs: 1000,
      timeoutMs: LIVENESS_MS,
      onLost: async () => void (await track()),
    });
    await emitter.start();
    await track();
    m.start();
    try {
      // An observation window of several liveness bounds over a live task: nothing may happen to it.
      await delay(5 * LIVENESS_MS);
    } finally {
      await m.close();
      await emitter.close();
    }
    expect(await readOperation(database.db, 'long_term_archive_transfer', id)).toMatchObject({
      status: 'in_progress',
      attempt: 0,
    });
    expect(lines.some((l) => l.msg === 'corrupt heartbeat entry' && l['reason'] === 'absurd-score')).toBe(
      true,
    );
  }, 60_000);
});
