// A PostgreSQL fault alone (a connection reset, a failover's moment) does not hold back expired
// heartbeats: the workers beat on in Redis meanwhile. Before, any failed pass gave expired members
// one more liveness bound, and a 0.2 s reset kept a dead worker's task 24 s at the shipped defaults
// (issue 13 adversary, round 8). The monitor's pool goes through a loopback proxy this test cuts.
import { createServer, connect, type Server, type Socket } from 'node:net';
import { createDatabase, readOperation, type CcatDatabase } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { HeartbeatEmitter, heartbeatKeys } from '@ccat/heartbeat';
import { connectTestRedis } from '@ccat/test-support';
import { expect } from 'vitest';
import { monitorTest } from './support/monitor-fixture.js';

const LIVENESS_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A TCP proxy to PostgreSQL; while cut, it destroys every connection and closes new ones at once
 * ('reset'), or stops listening so that new ones are refused ('refuse': a restarting server).
 */
function pgProxy(
  target: URL,
  mode: 'reset' | 'refuse',
): { server: Server; port: () => number; cut: (down: boolean) => Promise<void> } {
  let down = false;
  let port = 0;
  const open = new Set<Socket>();
  const server = createServer((client) => {
    if (down) return client.destroy();
    const upstream = connect(Number(target.port || 5432), target.hostname);
    for (const s of [client, upstream]) {
      open.add(s);
      s.on('close', () => open.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return {
    server,
    port: () => (port ||= (server.address() as { port: number }).port),
    cut: async (d) => {
      down = d;
      if (d) for (const s of open) s.destroy();
      if (mode !== 'refuse') return;
      if (d) await new Promise((r) => server.close(r));
      else await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    },
  };
}

const it = monitorTest('mon_pg_blip');

it.for(['reset', 'refuse'] as const)(
  "PostgreSQL unreachable during passes (%s) does not hold back a dead worker's expired task",
  { timeout: 30_000 },
  async (mode, { setup: { prefix, database, locations, redis, monitor, schema } }) => {
    const proxy = pgProxy(new URL(schema.url), mode);
    await new Promise<void>((r) => proxy.server.listen(0, '127.0.0.1', r));
    proxy.port();
    const url = new URL(schema.url);
    url.host = `127.0.0.1:${proxy.port()}`;
    const monitorDb: CcatDatabase = createDatabase({
      connectionString: url.toString(),
      schema: schema.schema,
      max: 2,
    });
    const deadRedis = await connectTestRedis();
    const keyPrefix = `${prefix}blip-${mode}:`;
    const id = await seedOperation(database.db, locations, 'deletion', {
      status: 'in_progress',
      lastSeenAgoS: 0,
    });
    const emitter = new HeartbeatEmitter({
      redis: deadRedis,
      keyPrefix,
      intervalMs: 1000,
      timeoutMs: LIVENESS_MS,
    });
    const m = monitor(
      {
        keyPrefix,
        monitor: { livenessTimeoutMs: LIVENESS_MS, heartbeatIntervalMs: 1000, progressStalls: false },
      },
      { db: monitorDb.db },
    );
    try {
      await emitter.start();
      await emitter.track(`deletion:${id}:0`);
      m.start();
      await sleep(300);
      deadRedis.disconnect(); // the worker dies: its member expires LIVENESS_MS after its last beat
      const deadline = Number(await redis.zscore(heartbeatKeys({ keyPrefix }).deadlines, `deletion:${id}:0`));
      // PostgreSQL unreachable from 0.5 s before the deadline to 1.5 s after it: the passes then fail.
      await sleep(Math.max(0, deadline - Date.now() - 500));
      await proxy.cut(true);
      await sleep(2000);
      await proxy.cut(false);
      const backAt = Date.now();
      let afterMs = -1;
      while (Date.now() - backAt < 15_000) {
        if ((await readOperation(database.db, 'deletion', id))?.status === 'pending') {
          afterMs = Date.now() - backAt;
          break;
        }
        await sleep(100);
      }
      console.log(
        `PostgreSQL back → the dead worker's task recovered after ${afterMs} ms (bound ${LIVENESS_MS} ms)`,
      );
      expect(afterMs).toBeGreaterThanOrEqual(0);
      // One beat interval of backoff at most, not a further liveness bound.
      expect(afterMs).toBeLessThan(LIVENESS_MS - 500);
    } finally {
      await m.close();
      await emitter.close().catch(() => undefined);
      await monitorDb.close();
      await proxy.cut(true);
      if (mode === 'reset') await new Promise((r) => proxy.server.close(r));
    }
  },
);
