// SIGTERM to a real worker process (dist/main.js) while its Redis, or its PostgreSQL, or both, are
// paused (SIGSTOP: connections open, no answers): exit 0 within its shutdown bound. Before, closing
// the Redis connections (quit) waited forever and the last-resort timer ended it with exit 1.
// Private servers; the shared ones are not touched.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, type CcatDatabase } from '@ccat/db';
import { PrivatePostgres, PrivateRedis, startJsonProcess, type JsonProcess } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerStopBounds } from '../src/index.js';
import { WORKER_MAIN } from './process.js';

const GRACE_MS = 200;
const CLOSE_MS = 2000;
// The worker's own bound: grace + close time + 5 s margin (apps/worker/src/main.ts).
const SHUTDOWN_MS = workerStopBounds({ graceMs: GRACE_MS, closeTimeoutMs: CLOSE_MS }).limitMs;
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
  root = await mkdtemp(join(tmpdir(), 'ccat-worker-term-paused-'));
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

async function worker(name: string): Promise<JsonProcess> {
  const file = join(root, `${name}.json`);
  await writeFile(
    file,
    JSON.stringify({
      workerId: name,
      database: { url: pg.url, poolSize: 4 },
      redis: { url: rd.url },
      keyPrefix: `${name}:`,
      http: { port: null },
      log: { level: 'debug', pretty: false },
      operationTypes: ['raw_data_package'],
      shutdown: { graceMs: GRACE_MS, closeTimeoutMs: CLOSE_MS },
    }),
  );
  const p = await startJsonProcess({
    name,
    script: WORKER_MAIN,
    args: ['--config', file],
    env: { CCAT_CONFIG: '' },
    ready: (l) => l['msg'] === 'worker started',
    readyTimeoutMs: 30_000,
  });
  processes.push(p);
  return p;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('SIGTERM with a paused server', () => {
  for (const which of ['redis', 'postgres', 'both'] as const) {
    it(`exits 0 within its shutdown bound with ${which} paused`, async () => {
      const p = await worker(`term-paused-${which}`);
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
