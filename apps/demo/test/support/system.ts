// End-to-end fixture: one schema, one Redis prefix, real directories, and real worker and monitor
// processes started through their commands (the packages' bin entries) with config files.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  type SeededLocations,
  seedRawPackages,
  seedSites,
  type TestDatabase,
} from '@ccat/db/testing';
import {
  commandEnv,
  connectTestRedis,
  deleteKeysWithPrefix,
  type JsonProcess,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
} from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { binScript } from '../../src/bins.js';

export const WORKER_MAIN = binScript('ccat-worker');
export const MONITOR_MAIN = binScript('ccat-monitor');
export const CLI = binScript('ccat-recovery');

export { commandEnv as cliEnv };

/** Runs `ccat-recovery` with `args` as a real process (killed after 20 s); its exit code and output. */
export function runCli(
  args: readonly string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: commandEnv(env), timeout: 20_000 },
      (error, stdout, stderr) =>
        resolve({
          code: error === null ? 0 : typeof error.code === 'number' ? error.code : null,
          stdout,
          stderr,
        }),
    );
  });
}

export interface E2E {
  readonly database: CcatDatabase;
  /** Where the database lives (for configuring a CLI run or another process by hand). */
  readonly testSchema: TestDatabase;
  readonly redis: Redis;
  readonly prefix: string;
  readonly root: string;
  readonly locations: SeededLocations;
  readonly processes: JsonProcess[];
  seed(packages: number): Promise<string[]>;
  /** Starts a process: the fixture's defaults, then `extra` config; `env` adds environment variables. */
  worker(name: string, extra?: object, env?: Readonly<Record<string, string>>): Promise<JsonProcess>;
  monitor(name: string, extra?: object, env?: Readonly<Record<string, string>>): Promise<JsonProcess>;
  close(): Promise<void>;
}

/** Timings for tests: a 1.5 s liveness timeout, beats every 150 ms. */
export const TIMEOUT_MS = 1500;

export async function createE2E(label: string, shared: object = {}): Promise<E2E> {
  const schema = await createTestDatabase(label);
  const database = schema.database;
  const redis = await connectTestRedis();
  const prefix = uniquePrefix(label);
  const root = await mkdtemp(join(tmpdir(), `ccat-${label}-`));
  const locations = await seedSites(database.db, root);
  const processes: JsonProcess[] = [];
  const base = {
    database: { url: schema.url, schema: schema.schema, poolSize: 4 },
    redis: { url: testRedisUrl() },
    keyPrefix: prefix,
    http: { port: null },
    log: { level: 'debug', pretty: false },
  };
  const start = async (
    name: string,
    script: string,
    defaults: object,
    extra: object,
    ready: string,
    env: Readonly<Record<string, string>> = {},
  ) => {
    // Defaults, then what the whole test shares, then what this one process gets.
    const config = merge(merge(defaults, shared), extra);
    const file = join(root, `${name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2));
    const p = await startJsonProcess({
      name,
      script,
      args: ['--config', file],
      env: { ...env, CCAT_CONFIG: '' },
      ready: (l) => l['msg'] === ready,
    });
    processes.push(p);
    return p;
  };
  let seeded = 0;
  return {
    database,
    testSchema: schema,
    redis,
    prefix,
    root,
    locations,
    processes,
    seed: (packages) =>
      seedRawPackages(database.db, locations, {
        packages,
        filesPerPackage: 2,
        minFileBytes: 1000,
        maxFileBytes: 20_000,
        source: 'cha/primecam-raw',
        buffer: 'cha/cha-buffer',
        prefix: `${label}-${++seeded}`,
      }),
    worker: (name, extra = {}, env = {}) =>
      start(
        name,
        WORKER_MAIN,
        {
          ...base,
          workerId: name,
          operationTypes: ['raw_data_package'],
          concurrency: 4,
          heartbeat: { intervalMs: 150, livenessTimeoutMs: TIMEOUT_MS, progressTimeoutMs: 60_000 },
          progressWriteIntervalMs: 100,
          recovery: { backoff: { baseMs: 10, maxMs: 20 } },
          dispatcher: { intervalMs: 100, scheduleTimeoutMs: 2000 },
          shutdown: { graceMs: 200, closeTimeoutMs: 2000 },
        },
        extra,
        'worker started',
        env,
      ),
    monitor: (name, extra = {}, env = {}) =>
      start(
        name,
        MONITOR_MAIN,
        {
          ...base,
          monitorId: name,
          monitor: {
            livenessTimeoutMs: TIMEOUT_MS,
            heartbeatIntervalMs: 150,
            loopIntervalMs: 60_000,
            leaseMs: 2000,
            scheduleTimeoutMs: 5000,
            cleanupPartials: true,
          },
          recovery: { backoff: { baseMs: 10, maxMs: 20 } },
          notifier: { relay: { pollIntervalMs: 100 } },
        },
        extra,
        'monitor started',
        env,
      ),
    async close() {
      for (const p of processes) {
        p.signal('SIGCONT');
        p.signal('SIGKILL');
        await p.exited;
      }
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      await schema.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

function merge(a: object, b: object): object {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && cur && typeof cur === 'object' && !Array.isArray(cur)
        ? merge(cur, v)
        : v;
  }
  return out;
}

/** A fault rule that keeps attempt 0 of raw_data_package busy (no progress, still beating). */
/** A fault rule that SIGKILLs the worker right after it claims attempt 0 of a raw_data_package (before its first beat). */
export const CRASH_AT_FIRST_CLAIM = {
  faults: {
    enabled: true,
    rules: [{ kind: 'crash', operationTypes: ['raw_data_package'], attempts: [0], stage: 'start' }],
  },
};

export const hangFirstAttempt = (durationMs: number) => ({
  faults: {
    enabled: true,
    rules: [
      { kind: 'hang', operationTypes: ['raw_data_package'], attempts: [0], stage: 'middle', durationMs },
    ],
  },
});
