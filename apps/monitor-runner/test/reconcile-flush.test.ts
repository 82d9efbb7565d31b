// Reconciliation after Redis lost data (issue 13 F3, adversary of 0e37cb8): a worker whose task's
// heartbeat member and health record were flushed keeps its task while it is alive by its own bound.
// The worker's last beat is at P; Redis is flushed right after it; the worker is SIGSTOPped for less
// than its liveness bound. Its row writes no database progress (last_seen_at 10 min ago, as a long
// task between progress writes), so the monitor watches it as soon as the member is gone. After a
// loss the monitor cannot tell when the worker last beat: it waits the worker's whole bound from
// when it first saw the member missing (a rule that took the watch threshold off that bound
// recovered this task ~1.5 s after P). A slower worker's bound is known before the flush: the
// monitor reads the health records once per beat interval whether or not a row needs them.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { databaseNow, readOperation } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { heartbeatKeys } from '@ccat/heartbeat';
import { deleteKeysWithPrefix, testRedisUrl } from '@ccat/test-support';
import { expect } from 'vitest';
import { monitorTest, type MonitorContext } from './support/monitor-fixture.js';

const LIVENESS_MS = 3000;
const INTERVAL_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Scenario {
  readonly name: string;
  readonly workerIntervalMs: number;
  readonly workerLivenessMs: number;
  /** How long the worker is SIGSTOPped right after its beat (0: not frozen; it beats on). */
  readonly freezeMs: number;
  /** Seed a dead task of another worker first, so the monitor has read the health records before the flush. */
  readonly primer: boolean;
  /** How long after the flush the row is watched. */
  readonly watchMs: number;
  /** The monitor's beat interval and liveness bound (default 1 s / 3 s). */
  readonly monitorMs?: readonly [number, number];
  /** A new monitor (restarted, or a standby taking over) runs the passes after the flush. */
  readonly newMonitorAfterFlush?: boolean;
}

async function runScenario(
  { prefix, database, locations, redis, monitor }: MonitorContext,
  sc: Scenario,
): Promise<{ recoveredAfterMs?: number; status: string | undefined; attempt: number | undefined }> {
  const keyPrefix = `${prefix}${sc.name}:`;
  const worker = `w-${sc.name}`;
  const id = await seedOperation(database.db, locations, 'deletion', {
    status: 'in_progress',
    lastSeenAgoS: 600,
    claimedBy: worker,
  });
  const primerId = sc.primer
    ? await seedOperation(database.db, locations, 'deletion', {
        status: 'in_progress',
        lastSeenAgoS: 600,
        claimedBy: 'w-dead-other',
      })
    : undefined;
  const member = `deletion:${id}:0`;
  const child: ChildProcess = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('./support/frozen-worker.mjs', import.meta.url)),
      keyPrefix,
      member,
      worker,
      String(sc.workerIntervalMs),
      String(sc.workerLivenessMs),
      // As a real worker's record says: it has claimed since before this row's claim (600 s ago).
      String((await databaseNow(database.db)) - 601_000),
    ],
    // The same Redis as this test's monitor (TEST_REDIS_URL wins over REDIS_URL there too).
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, REDIS_URL: testRedisUrl() } },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let out = '';
  child.stdout!.on('data', (d) => (out += String(d)));
  const config = {
    keyPrefix,
    monitor: {
      livenessTimeoutMs: sc.monitorMs?.[1] ?? LIVENESS_MS,
      heartbeatIntervalMs: sc.monitorMs?.[0] ?? INTERVAL_MS,
      loopIntervalMs: 300_000,
      batchSize: 100,
      progressStalls: false,
    },
  };
  const newMonitor = () => monitor(config, { monitorId: 'flush-monitor' });
  let m = newMonitor();
  const deadlines = heartbeatKeys({ keyPrefix }).deadlines;
  try {
    while (!out.includes('ready')) await sleep(20);
    // Normal passes; with the primer, a dead task of another worker makes the monitor read the
    // workers' health records (it reads them only when some row's member is missing).
    const warm = Date.now() + Math.max(2500, sc.workerIntervalMs + 500);
    while (
      Date.now() < warm ||
      (primerId !== undefined &&
        (await readOperation(database.db, 'deletion', primerId))?.status === 'in_progress')
    ) {
      await m.runPass();
      await sleep(100);
    }
    expect(await readOperation(database.db, 'deletion', id)).toMatchObject({ status: 'in_progress' });
    // Wait for a beat (the member's score moves), then (freeze the worker and) lose Redis's keys.
    const s0 = await redis.zscore(deadlines, member);
    while ((await redis.zscore(deadlines, member)) === s0) await sleep(5);
    const lastBeatAt = Date.now();
    if (sc.freezeMs > 0) child.kill('SIGSTOP');
    await deleteKeysWithPrefix(redis, keyPrefix);
    if (sc.newMonitorAfterFlush) {
      await m.close();
      m = newMonitor();
    }
    let recoveredAfterMs: number | undefined;
    let thawed = sc.freezeMs === 0;
    while (Date.now() - lastBeatAt < sc.watchMs) {
      if (!thawed && Date.now() - lastBeatAt >= sc.freezeMs) {
        child.kill('SIGCONT');
        thawed = true;
      }
      await m.runPass();
      const row = await readOperation(database.db, 'deletion', id);
      if (row?.status !== 'in_progress' && recoveredAfterMs === undefined)
        recoveredAfterMs = Date.now() - lastBeatAt;
      await sleep(50);
    }
    child.kill('SIGCONT');
    const row = await readOperation(database.db, 'deletion', id);
    console.log(
      `[${sc.name}] worker beat ${sc.workerIntervalMs}/${sc.workerLivenessMs} ms, monitor ${sc.monitorMs?.[0] ?? INTERVAL_MS}/${sc.monitorMs?.[1] ?? LIVENESS_MS} ms, ` +
        `frozen ${sc.freezeMs} ms after its last beat, primer ${sc.primer}: row ${row?.status} attempt ${row?.attempt}; ` +
        `recovered ${recoveredAfterMs ?? 'never'} ms after the last beat; worker said: ${JSON.stringify(out.trim())}`,
    );
    return {
      ...(recoveredAfterMs !== undefined && { recoveredAfterMs }),
      status: row?.status,
      attempt: row?.attempt,
    };
  } finally {
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    // Its close waits on Redis: bounded, then killed, so no stand-in outlives the test.
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    await m.close();
  }
}

// Each test's `scenario` runs one scenario on this file's schema, Redis and monitor factory.
const it = monitorTest('mon_flush').extend(
  'scenario',
  ({ setup }) =>
    (sc: Scenario) =>
      runScenario(setup, sc),
);

// Same bounds everywhere (worker = monitor). Frozen 2.5 s < its 3 s liveness bound, right after its
// beat, while Redis loses its keys; the monitor knew the worker's bounds before the flush.
// Old rule: waits max(1.5, 3) s from first seen missing: kept. New rule (0e37cb8): max(1.5, 3-1.5,
// 1+0.5) = 1.5 s: recovered ~1.6 s after the last beat, though the process was never silent for its bound.
it('F1: a worker frozen for less than its liveness bound across a Redis flush keeps its task', async ({
  scenario,
}) => {
  const r = await scenario({
    name: 'frozen',
    workerIntervalMs: INTERVAL_MS,
    workerLivenessMs: LIVENESS_MS,
    freezeMs: LIVENESS_MS - 500,
    primer: true,
    watchMs: LIVENESS_MS + 2000,
  });
  expect(r.recoveredAfterMs).toBeUndefined();
}, 30_000);

// A worker beating slower than the monitor (2.5 s / 8 s, as in reconcile.test.ts), NOT frozen, beats on.
// Redis loses its keys right after a beat. The monitor had never needed the health records (no row
// had a missing member), so it does not know this worker's bounds: waits its own 1.5 s; the worker
// re-registers after 2.5 s. Fails on the old rule too (pre-existing).
it('F2: a slower live worker keeps its task across a Redis flush when the monitor had not read its bounds yet', async ({
  scenario,
}) => {
  const r = await scenario({
    name: 'slow',
    workerIntervalMs: 2500,
    workerLivenessMs: 8000,
    freezeMs: 0,
    primer: false,
    watchMs: 6000,
  });
  expect(r.recoveredAfterMs).toBeUndefined();
}, 30_000);

// F1 at the shipped defaults (worker and monitor beat 4 s, liveness 12 s): frozen 11.5 s (< 12 s) right
// after its beat while Redis loses its keys. New rule: recovered 7-12 s after the flush (first seen missing at the next reconciliation, every 5 s); old: 12-17 s.
it('F1 at the shipped defaults: frozen 11.5 s of a 12 s bound across a flush keeps its task', async ({
  scenario,
}) => {
  const r = await scenario({
    name: 'frozen12',
    workerIntervalMs: 4000,
    workerLivenessMs: 12_000,
    freezeMs: 11_500,
    primer: true,
    watchMs: 11_900,
    monitorMs: [4000, 12_000],
  });
  expect(r.recoveredAfterMs).toBeUndefined();
}, 60_000);

// F1 with the monitor restarted (or a standby taking over) after the flush.
// The new monitor never read the worker's bound (the flush took the health record with it) and waits
// only its own absentFor = max(3 - 1.5, 1.5) = 1.5 s from first seen missing: the worker, frozen 2.5 s
// of its 3 s bound, loses its task although it is alive by its own bound.
it('a monitor restarted after the flush keeps the task of a worker frozen for less than its bound', async ({
  scenario,
}) => {
  const r = await scenario({
    name: 'frozen-restart',
    workerIntervalMs: INTERVAL_MS,
    workerLivenessMs: LIVENESS_MS,
    freezeMs: LIVENESS_MS - 500,
    primer: true,
    watchMs: LIVENESS_MS + 2000,
    newMonitorAfterFlush: true,
  });
  expect(r.recoveredAfterMs).toBeUndefined();
}, 30_000);

// F2 (a slower worker, 2.5 s / 8 s, NOT frozen, beating on) with a monitor
// started after the flush (restart, rolling deploy, new replica): it waits its own 1.5 s, the worker
// re-registers after up to 2.5 s. The runbook says such a worker's bound is honoured.
it('a monitor started after the flush keeps the task of a slower live worker', async ({ scenario }) => {
  const r = await scenario({
    name: 'slow-restart',
    workerIntervalMs: 2500,
    workerLivenessMs: 8000,
    freezeMs: 0,
    primer: true,
    watchMs: 6000,
    newMonitorAfterFlush: true,
  });
  expect(r.recoveredAfterMs).toBeUndefined();
}, 30_000);
