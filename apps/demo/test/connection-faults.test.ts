// No connection fault kills a process (issue 11, input 1) and readiness follows PostgreSQL (input
// 7): a real monitor (loop 200 ms) and a real worker on a private PostgreSQL whose backends are
// terminated every 250 ms for several seconds, then restarted fast, then stopped for a while. Both
// stay up, log the loss once per outage (not once per query), answer /readyz 503 while the server
// is away and 200 when it is back, and an operation seeded afterwards completes. The shared servers
// are never touched: PostgreSQL is this test's own, Redis keys live under a prefix of its own.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, readOperation, type CcatDatabase } from '@ccat/db';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  freePort,
  PrivatePostgres,
  PrivateRedis,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
  waitFor,
  type JsonProcess,
} from '@ccat/test-support';
import { FATAL_UNHANDLED_MESSAGE } from '@ccat/service';
import { seedRawPackages, seedSites, type SeededLocations } from '@ccat/db/testing';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MONITOR_MAIN, WORKER_MAIN } from './support/system.js';

let server: PrivatePostgres;
let database: CcatDatabase;
let redis: Redis;
let root: string;
let locations: SeededLocations;
const prefix = uniquePrefix('connfaults');
const processes: JsonProcess[] = [];

beforeAll(async () => {
  server = await PrivatePostgres.start();
  database = createDatabase({ connectionString: server.url, max: 2 });
  await migrateToLatest(database.db);
  redis = await connectTestRedis();
  root = await mkdtemp(join(tmpdir(), 'ccat-connfaults-'));
  locations = await seedSites(database.db, root);
}, 120_000);
afterAll(async () => {
  for (const p of processes) {
    p.signal('SIGCONT');
    p.signal('SIGKILL');
    await p.exited;
  }
  await deleteKeysWithPrefix(redis, prefix).catch(() => 0);
  redis?.disconnect();
  await database?.close();
  await server?.destroy();
  await rm(root, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function start(name: string, script: string, config: object, ready: string): Promise<JsonProcess> {
  const file = join(root, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const p = await startJsonProcess({
    name,
    script,
    args: ['--config', file],
    env: { CCAT_CONFIG: '' },
    ready: (l) => l['msg'] === ready,
    readyTimeoutMs: 30_000,
  });
  processes.push(p);
  return p;
}

async function readyz(port: number): Promise<number> {
  return fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(10_000) }).then(
    (r) => r.status,
    () => 0,
  );
}

let seeded = 0;
/** Seeds one raw data package (before any fault: the test's own connection is terminated too). */
async function seed(): Promise<string> {
  const [id] = await seedRawPackages(database.db, locations, {
    packages: 1,
    filesPerPackage: 2,
    minFileBytes: 1000,
    maxFileBytes: 20_000,
    source: 'cha/primecam-raw',
    buffer: 'cha/cha-buffer',
    prefix: `connfaults-${++seeded}`,
  });
  return id!;
}

/** Processes this test stopped itself: their end is no failure. */
function forget(...stopped: JsonProcess[]): void {
  for (const p of stopped) processes.splice(processes.indexOf(p), 1);
}

/** A process of this test that has ended: that is the failure to report, with its stderr. */
function dead(): string | undefined {
  const p = processes.find((q) => q.child.exitCode !== null || q.child.signalCode !== null);
  return p && `${p.name} exited (${p.child.exitCode ?? p.child.signalCode}): ${p.stderr().slice(-600)}`;
}

/** Waits for the operation to complete; fails at once, with its stderr, if a process died. */
async function completed(id: string): Promise<void> {
  const outcome = await waitFor(
    async () => {
      const died = dead();
      if (died !== undefined) return died;
      const row = await readOperation(database.db, 'raw_data_package', id).catch(() => undefined);
      return row?.status === 'completed' ? 'completed' : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200, message: `operation ${id} completed` },
  );
  expect(outcome).toBe('completed');
}

describe('processes on a PostgreSQL that drops their connections', () => {
  it('stay up through terminated backends, a fast restart and an outage, say so once, and carry on', async () => {
    const shared = {
      database: { url: server.url, poolSize: 4 },
      redis: { url: testRedisUrl() },
      keyPrefix: prefix,
      log: { level: 'debug', pretty: false },
      recovery: { backoff: { baseMs: 10, maxMs: 50 } },
    };
    const monitorPort = await freePort();
    const workerPort = await freePort();
    const monitor = await start(
      'monitor',
      MONITOR_MAIN,
      {
        ...shared,
        monitorId: 'connfaults-monitor',
        http: { port: monitorPort },
        monitor: {
          loopIntervalMs: 200,
          livenessTimeoutMs: 3000,
          heartbeatIntervalMs: 150,
          leaseMs: 500,
          scheduleTimeoutMs: 5000,
        },
        notifier: { relay: { pollIntervalMs: 100 } },
      },
      'monitor started',
    );
    const worker = await start(
      'worker',
      WORKER_MAIN,
      {
        ...shared,
        workerId: 'connfaults-worker',
        http: { port: workerPort },
        operationTypes: ['raw_data_package'],
        concurrency: 2,
        heartbeat: { intervalMs: 150, livenessTimeoutMs: 3000, progressTimeoutMs: 60_000 },
        progressWriteIntervalMs: 100,
        dispatcher: { intervalMs: 100, scheduleTimeoutMs: 2000 },
        shutdown: { graceMs: 200, closeTimeoutMs: 2000 },
        // Each first attempt holds still for 2 s in the middle: work is in flight when backends go.
        faults: {
          enabled: true,
          rules: [
            {
              kind: 'hang',
              operationTypes: ['raw_data_package'],
              attempts: [0],
              stage: 'middle',
              durationMs: 2000,
            },
          ],
        },
      },
      'worker started',
    );
    await completed(await seed());
    expect(await readyz(monitorPort)).toBe(200);
    expect(await readyz(workerPort)).toBe(200);

    // Every backend of the database terminated every 250 ms for 5 s, while work runs.
    const during = await seed();
    let terminated = 0;
    const until = Date.now() + 5_000;
    while (Date.now() < until) {
      terminated += await server.terminateBackends().catch(() => 0);
      await sleep(250);
    }
    expect(terminated).toBeGreaterThan(0);
    // pg_ctl restart -m fast.
    await server.restart();
    await completed(during);

    // An outage: not ready while the server is away, ready again once it is back.
    await server.stop();
    await waitFor(async () => (await readyz(monitorPort)) === 503, {
      timeoutMs: 20_000,
      message: 'monitor 503',
    });
    await waitFor(async () => (await readyz(workerPort)) === 503, {
      timeoutMs: 20_000,
      message: 'worker 503',
    });
    await sleep(2_000);
    await server.spawn();
    await waitFor(async () => (await readyz(monitorPort)) === 200, {
      timeoutMs: 30_000,
      message: 'monitor 200',
    });
    await waitFor(async () => (await readyz(workerPort)) === 200, {
      timeoutMs: 30_000,
      message: 'worker 200',
    });
    await completed(await seed());

    for (const p of [monitor, worker]) {
      const warnings = p.lines.filter((l) => typeof l['level'] === 'number' && l['level'] >= 40);
      console.log(
        `${p.name}: ${warnings.length} warnings or errors, e.g. ${[...new Set(warnings.map((l) => String(l['msg'])))].slice(0, 8).join(' | ')}`,
      );
      expect(p.child.exitCode, `${p.name} still runs; stderr: ${p.stderr()}`).toBeNull();
      expect(p.child.signalCode).toBeNull();
      expect(p.stderr()).not.toMatch(/Unhandled 'error' event|FATAL_UNHANDLED|fatal: unhandled/);
      expect(p.lines.filter((l) => l['msg'] === FATAL_UNHANDLED_MESSAGE)).toEqual([]);
      // The loss is logged, and once per outage rather than once per failed client or query.
      const lost = p.lines.filter((l) => l['msg'] === 'PostgreSQL connection lost; reconnecting');
      expect(lost.length, `${p.name} logged the loss`).toBeGreaterThan(0);
      expect(lost.length, `${p.name}: ${lost.length} loss lines`).toBeLessThanOrEqual(4);
    }
    monitor.signal('SIGTERM');
    worker.signal('SIGTERM');
    expect(await monitor.exited).toBe(0);
    expect(await worker.exited).toBe(0);
    forget(monitor, worker);
  }, 240_000);

  it('stay up through a Redis restart and outage: 503 while it is away, 200 after, work carries on', async () => {
    const cache = await PrivateRedis.start();
    try {
      const shared = {
        database: { url: server.url, poolSize: 4 },
        redis: { url: cache.url },
        keyPrefix: 'ccat-redisfaults:',
        log: { level: 'debug', pretty: false },
        recovery: { backoff: { baseMs: 10, maxMs: 50 } },
      };
      const monitorPort = await freePort();
      const workerPort = await freePort();
      const monitor = await start(
        'redis-monitor',
        MONITOR_MAIN,
        {
          ...shared,
          monitorId: 'redisfaults-monitor',
          http: { port: monitorPort },
          monitor: {
            loopIntervalMs: 200,
            livenessTimeoutMs: 3000,
            heartbeatIntervalMs: 150,
            leaseMs: 500,
            scheduleTimeoutMs: 5000,
          },
          notifier: { relay: { pollIntervalMs: 100 } },
        },
        'monitor started',
      );
      const worker = await start(
        'redis-worker',
        WORKER_MAIN,
        {
          ...shared,
          workerId: 'redisfaults-worker',
          http: { port: workerPort },
          operationTypes: ['raw_data_package'],
          concurrency: 2,
          heartbeat: { intervalMs: 150, livenessTimeoutMs: 3000, progressTimeoutMs: 60_000 },
          progressWriteIntervalMs: 100,
          dispatcher: { intervalMs: 100, scheduleTimeoutMs: 2000 },
          shutdown: { graceMs: 200, closeTimeoutMs: 2000 },
        },
        'worker started',
      );
      await completed(await seed());
      // Killed and started again at once (every key lost), then away for a while.
      await cache.restart();
      await completed(await seed());
      await cache.kill();
      await waitFor(async () => (await readyz(monitorPort)) === 503, {
        timeoutMs: 20_000,
        message: 'monitor 503',
      });
      await waitFor(async () => (await readyz(workerPort)) === 503, {
        timeoutMs: 20_000,
        message: 'worker 503',
      });
      await sleep(3_000);
      await cache.spawn();
      await waitFor(async () => (await readyz(monitorPort)) === 200, {
        timeoutMs: 30_000,
        message: 'monitor 200',
      });
      await waitFor(async () => (await readyz(workerPort)) === 200, {
        timeoutMs: 30_000,
        message: 'worker 200',
      });
      await completed(await seed());
      for (const p of [monitor, worker]) {
        expect(p.child.exitCode, `${p.name} still runs; stderr: ${p.stderr()}`).toBeNull();
        expect(p.lines.filter((l) => l['msg'] === FATAL_UNHANDLED_MESSAGE)).toEqual([]);
        const lost = p.lines.filter((l) => l['msg'] === 'Redis connection lost; reconnecting');
        expect(lost.length, `${p.name} logged the loss`).toBeGreaterThan(0);
        expect(lost.length, `${p.name}: ${lost.length} loss lines`).toBeLessThanOrEqual(4);
      }
      monitor.signal('SIGTERM');
      worker.signal('SIGTERM');
      expect(await monitor.exited).toBe(0);
      expect(await worker.exited).toBe(0);
      forget(monitor, worker);
    } finally {
      await cache.stop();
    }
  }, 240_000);
});
