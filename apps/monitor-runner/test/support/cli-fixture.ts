// The CLI tests' `test`: monitorTest(label) (monitor-fixture.ts) with two more file-scoped fixtures:
//   f          that file's schema seeded (cli-seed.ts) and the helpers that run the CLI against it
//   dashboard  `dashboard(env)`: a dashboard on f's database and Redis, configured by `f.env` and `env`
// Everything they start is closed when the file ends. A file's own set-up takes them in `it.beforeAll`.
//
// With `heartbeats`, three tasks are tracked under the prefix:
//   deletion:I:0               beats, progress {"bytesDone":1024}
//   data_transfer_package:K:0  beats, progress never changes (progress-stalled after 100 ms)
//   unpack:N:0                 its emitter closed: the member stays and expires after 30 ms
// and a service `monitor/cli-test` reports itself alive.
import { readOperation, type CcatDatabase, type OperationType } from '@ccat/db';
import { HeartbeatEmitter, HeartbeatScanner, ServiceHealthReporter } from '@ccat/heartbeat';
import { testRedisUrl, waitFor } from '@ccat/test-support';
import type { HttpServer } from '@ccat/service';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadMonitorConfig } from '../../src/config.js';
import { startDashboard } from '../../src/dashboard/server.js';
import { runCliInProcess, runCliProcess, type CliRun } from './cli-process.js';
import { seedCliDatabase, type Seeded } from './cli-seed.js';
import { monitorTest } from './monitor-fixture.js';

export type Letter = keyof Seeded['ids'];

export interface CliFixture {
  /** DATABASE_URL, DATABASE_SCHEMA, REDIS_URL, CCAT_KEY_PREFIX of this file's schema and prefix. */
  readonly env: Record<string, string>;
  readonly database: CcatDatabase;
  readonly redis: Redis;
  readonly prefix: string;
  id(letter: Letter): string;
  row(type: OperationType, letter: Letter): ReturnType<typeof readOperation>;
  /** `node dist/cli.js …` as a process. */
  cli(...args: string[]): Promise<CliRun>;
  cliWith(extra: Record<string, string>, ...args: string[]): Promise<CliRun>;
  /** The same through runCli in this process: for variants of what a process run already showed. */
  inProcess(...args: string[]): Promise<CliRun>;
  inProcessWith(extra: Record<string, string>, ...args: string[]): Promise<CliRun>;
}

/** The CLI tests' `test` (see the module comment). */
export function cliTest(label: string, options: { heartbeats: boolean }) {
  return monitorTest(label)
    .extend(
      'f',
      { scope: 'file' },
      async ({ schema, database, redis, prefix }, { onCleanup }): Promise<CliFixture> => {
        const { ids } = await seedCliDatabase(database.db);
        if (options.heartbeats) {
          const closers: (() => Promise<unknown>)[] = [];
          const close = async () => {
            for (const c of closers.reverse()) await c().catch(() => undefined);
          };
          // Closed at the file's end, or at once if the set-up fails (vitest then runs no cleanup).
          onCleanup(close);
          await trackHeartbeats(redis, prefix, ids, closers).catch(async (e: unknown) => {
            await close();
            throw e;
          });
        }
        const env = {
          DATABASE_URL: schema.url,
          DATABASE_SCHEMA: schema.schema,
          REDIS_URL: testRedisUrl(),
          CCAT_KEY_PREFIX: prefix,
        };
        return {
          env,
          database,
          redis,
          prefix,
          id: (letter) => ids[letter],
          row: (type, letter) => readOperation(database.db, type, ids[letter]),
          cli: (...args) => runCliProcess(args, env),
          cliWith: (extra, ...args) => runCliProcess(args, { ...env, ...extra }),
          inProcess: (...args) => runCliInProcess(args, env),
          inProcessWith: (extra, ...args) => runCliInProcess(args, { ...env, ...extra }),
        };
      },
    )
    .extend('dashboard', { scope: 'file' }, ({ f }, { onCleanup }) => {
      const started: HttpServer[] = [];
      onCleanup(() => Promise.all(started.map((d) => d.close())).then(() => undefined));
      return async (env: Record<string, string>): Promise<HttpServer> => {
        const d = await startDashboard({
          config: loadMonitorConfig({
            env: { ...f.env, ...env },
            file: { dashboard: { enabled: true, port: 0 } },
          }),
          db: f.database.db,
          redis: f.redis,
          logger: pino({ level: 'silent' }),
        });
        started.push(d);
        return d;
      };
    });
}

async function trackHeartbeats(
  redis: Redis,
  prefix: string,
  ids: Seeded['ids'],
  closers: (() => Promise<unknown>)[],
): Promise<void> {
  const live = new HeartbeatEmitter({
    redis,
    keyPrefix: prefix,
    intervalMs: 40,
    timeoutMs: 60_000,
    workerId: 'worker-live',
  });
  closers.push(() => live.close());
  await live.start();
  await live.track(`deletion:${ids.I}:0`, { progress: { bytesDone: 1024 } });
  await live.track(`data_transfer_package:${ids.K}:0`, {
    progressTimeoutMs: 100,
    progress: { bytesDone: 0 },
  });
  const dead = new HeartbeatEmitter({
    redis,
    keyPrefix: prefix,
    intervalMs: 10,
    timeoutMs: 30,
    workerId: 'worker-dead',
  });
  await dead.track(`unpack:${ids.N}:0`);
  await dead.close();
  const health = new ServiceHealthReporter({
    redis,
    keyPrefix: prefix,
    serviceType: 'monitor',
    serviceName: 'cli-test',
    ttlMs: 60_000,
    refreshMs: 30_000,
  });
  closers.push(() => health.close());
  await health.start();
  // worker-live serves the raw data packages at Chajnantor only: every other queue is unserved.
  const workerHealth = new ServiceHealthReporter({
    redis,
    keyPrefix: prefix,
    serviceType: 'worker',
    serviceName: 'worker-live',
    ttlMs: 60_000,
    refreshMs: 30_000,
    queues: ['cha_primecam-raw_raw_data_package'],
  });
  closers.push(() => workerHealth.close());
  await workerHealth.start();
  const scanner = new HeartbeatScanner({ redis, keyPrefix: prefix });
  await waitFor(
    async () => {
      const c = await scanner.counts();
      return c.inFlight === 3 && c.expiredDue === 1 && c.stalledDue === 1;
    },
    { timeoutMs: 5_000, message: 'one expired and one progress-stalled heartbeat' },
  );
}
