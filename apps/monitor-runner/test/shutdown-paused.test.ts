// SIGTERM to a real monitor process (dist/main.js) while its Redis, or its PostgreSQL, or both, are
// paused (SIGSTOP: connections open, no answers): exit 0 within shutdown.timeoutMs (issue 11,
// Lifecycle). Before, a step waiting on the paused server ran into the last-resort timer: exit 1.
// Private servers; the shared ones are not touched.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createDatabase, migrateToLatest, type CcatDatabase } from '@ccat/db';
import { PrivatePostgres, PrivateRedis, startJsonProcess, type JsonProcess } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
const MONITOR_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

const SHUTDOWN_MS = 3000;
let pg: PrivatePostgres;
let rd: PrivateRedis;
let database: CcatDatabase;
let root: string;
const processes: JsonProcess[] = [];

beforeAll(async () => {
  pg = await PrivatePostgres.start();
  rd = await PrivateRedis.start();
  database = createDatabase({ connectionString: pg.url, max: 2 });
  await migrateToLatest(database.db);
  root = await mkdtemp(join(tmpdir(), 'ccat-term-paused-'));
}, 120_000);
afterAll(async () => {
  pg?.resume();
  rd?.resume();
  for (const p of processes) {
    p.signal('SIGKILL');
    await p.exited;
  }
  await database?.close();
  await pg?.destroy();
  await rd?.stop();
  await rm(root, { recursive: true, force: true });
});

async function monitor(name: string): Promise<JsonProcess> {
  const file = join(root, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      monitorId: name,
      database: { url: pg.url, poolSize: 4 },
      redis: { url: rd.url },
      keyPrefix: `${name}:`,
      http: { port: null },
      log: { level: 'debug', pretty: false },
      monitor: { loopIntervalMs: 200 },
      shutdown: { timeoutMs: SHUTDOWN_MS },
    }),
  );
  const p = await startJsonProcess({
    name,
    script: MONITOR_MAIN,
    args: ['--config', file],
    env: { CCAT_CONFIG: '' },
    ready: (l) => l['msg'] === 'monitor started',
    readyTimeoutMs: 30_000,
  });
  processes.push(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGTERM with a paused server', () => {
  for (const which of ['redis', 'postgres', 'both'] as const) {
    it(`exits 0 within shutdown.timeoutMs with ${which} paused`, async () => {
      const p = await monitor(`term-paused-${which}`);
      await sleep(1000);
      if (which !== 'postgres') rd.pause();
      if (which !== 'redis') pg.pause();
      try {
        await sleep(500);
        const t0 = Date.now();
        p.signal('SIGTERM');
        const code = await Promise.race([p.exited, sleep(SHUTDOWN_MS + 10_000).then(() => 'still running')]);
        const ms = Date.now() - t0;
        const tail = p.lines
          .slice(-6)
          .map((l) => `${String(l['msg'])} ${JSON.stringify(l['step'] ?? l['err'] ?? '')}`)
          .join(' | ');
        console.log(`${which} paused: exit ${String(code)} after ${ms} ms; last lines: ${tail}`);
        expect(code).toBe(0);
        expect(ms).toBeLessThan(SHUTDOWN_MS + 1000);
      } finally {
        rd.resume();
        pg.resume();
      }
    }, 60_000);
  }
});
