// In-process harness: a migrated schema, real directories, a real heartbeat emitter on Redis, and
// the TaskRunner fed directly (no BullMQ), so tests can drive the pipeline step by step.
//
//   workerTest  a `test` (use it as `it`) whose context gives
//     harness   test scope  `harness(label, overrides?)`: a new Harness (its own schema, root
//                           directory and Redis key prefix, named by `label`; `overrides` on the
//                           test config below). Every Harness it made is closed when the test ends,
//                           after the file's afterEach hooks.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  countsByTypeAndStatus,
  dispatchDue,
  OPERATION_TYPES,
  type CcatDatabase,
  type OperationRef,
} from '@ccat/db';
import { createTestDatabase, type SeededLocations, seedRawPackages, seedSites } from '@ccat/db/testing';
import { HeartbeatEmitter } from '@ccat/heartbeat';
import { createHandlerRegistry } from '@ccat/recovery-handlers';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';
import { test } from 'vitest';
import { workerConfigSchema, type WorkerConfig, type WorkerConfigInput } from '../src/config.js';
import { createFaultInjector } from '../src/faults.js';
import { createWorkerMetrics } from '../src/metrics.js';
import { bundleRawPackages } from '../src/pipeline.js';
import { jobId } from '../src/queues.js';
import { TaskRunner, type TaskOutcome } from '../src/task-runner.js';
import { createLocalCopyTransport } from '../src/transports.js';

export interface Harness {
  readonly database: CcatDatabase;
  readonly root: string;
  readonly locations: SeededLocations;
  readonly runner: TaskRunner;
  readonly config: WorkerConfig;
  readonly redis: Redis;
  readonly prefix: string;
  readonly logs: Record<string, unknown>[];
  readonly logger: Logger;
  /** Seeds raw data packages at cha/primecam-raw → cha/cha-buffer. */
  seed(packages: number, filesPerPackage?: number): Promise<string[]>;
  /** Runs due operations (bundling on the way) until a pass finds nothing to do; returns outcomes. */
  runUntilQuiet(options?: {
    before?: (ref: OperationRef) => Promise<TaskOutcome | undefined>;
    maxPasses?: number;
  }): Promise<{ ref: OperationRef; outcome: TaskOutcome }[]>;
  run(ref: OperationRef): Promise<TaskOutcome>;
  /** Every path under root containing `.ccat-partial-`. */
  partials(): Promise<string[]>;
  close(): Promise<void>;
}

type HarnessFactory = (label: string, overrides?: WorkerConfigInput) => Promise<Harness>;

/** The worker tests' `test` (see the module comment). */
export const workerTest = test.extend(
  'harness',
  // eslint-disable-next-line no-empty-pattern -- vitest reads a fixture's dependencies from this pattern
  ({}, { onCleanup }): HarnessFactory => {
    const made: Harness[] = [];
    onCleanup(async () => {
      await Promise.all(made.map((h) => h.close()));
    });
    return async (label, overrides) => {
      const h = await createHarness(label, overrides);
      made.push(h);
      return h;
    };
  },
);

async function createHarness(label: string, overrides: WorkerConfigInput = {}): Promise<Harness> {
  const schema = await createTestDatabase(label);
  const database = schema.database;
  const root = await mkdtemp(join(tmpdir(), `ccat-${label}-`));
  const locations = await seedSites(database.db, root);
  const redis = await connectTestRedis();
  const prefix = uniquePrefix(label);
  const config = workerConfigSchema.parse({
    keyPrefix: prefix,
    heartbeat: { intervalMs: 50, livenessTimeoutMs: 2000, progressTimeoutMs: 2000 },
    recovery: { backoff: { baseMs: 10, maxMs: 50 } },
    progressWriteIntervalMs: 50,
    dispatcher: { bundleSize: 2, bundleMaxWaitMs: 0 },
    http: { port: null },
    ...overrides,
  });
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        for (const l of chunk.toString().split('\n'))
          if (l.trim()) logs.push(JSON.parse(l) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const heartbeat = new HeartbeatEmitter({
    redis,
    keyPrefix: prefix,
    intervalMs: config.heartbeat.intervalMs,
    timeoutMs: config.heartbeat.livenessTimeoutMs,
    workerId: 'test-worker',
    logger,
  });
  await heartbeat.start();
  const metrics = createWorkerMetrics();
  const runner = new TaskRunner({
    db: database.db,
    heartbeat,
    recovery: { db: database.db, registry: createHandlerRegistry(), policy: config.recovery, logger },
    logger,
    workerId: 'test-worker',
    transport: createLocalCopyTransport(),
    faults: createFaultInjector(config.faults, logger, () => {
      throw new Error('crash faults need a real process');
    }),
    metrics,
    config,
  });
  let seeded = 0;
  const run = (ref: OperationRef) =>
    runner.run({ operationType: ref.type, operationId: ref.id, attempt: ref.attempt }, jobId(ref), 'test');
  const h: Harness = {
    database,
    root,
    locations,
    runner,
    config,
    redis,
    prefix,
    logs,
    logger,
    seed: (packages, filesPerPackage = 3) =>
      seedRawPackages(database.db, locations, {
        packages,
        filesPerPackage,
        minFileBytes: 1,
        maxFileBytes: 64 * 1024,
        source: 'cha/primecam-raw',
        buffer: 'cha/cha-buffer',
        prefix: `${label}-${++seeded}`,
      }),
    run,
    async runUntilQuiet(options = {}) {
      const out: { ref: OperationRef; outcome: TaskOutcome }[] = [];
      for (let pass = 0; pass < (options.maxPasses ?? 500); pass++) {
        let did = await bundleRawPackages(database.db, { ...config.dispatcher, flush: true });
        for (const type of OPERATION_TYPES) {
          for (const ref of await dispatchDue(database.db, type, { limit: 1000 })) {
            // `before` may handle the job itself (returning its outcome).
            const handled = await options.before?.(ref);
            out.push({ ref, outcome: handled ?? (await run(ref)) });
            did++;
          }
        }
        if (did === 0) {
          if ((await anyPending(database)) === 0) return out;
          // Something waits out a backoff (tens of ms here).
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      throw new Error('pipeline did not go quiet');
    },
    async partials() {
      const found: string[] = [];
      const walk = async (dir: string): Promise<void> => {
        for (const e of await readdir(dir, { withFileTypes: true })) {
          const p = join(dir, e.name);
          if (e.name.includes('.ccat-partial-')) found.push(p);
          if (e.isDirectory()) await walk(p);
        }
      };
      await walk(root);
      return found;
    },
    async close() {
      await heartbeat.close();
      await deleteKeysWithPrefix(redis, prefix);
      redis.disconnect();
      await schema.close();
      await rm(root, { recursive: true, force: true });
    },
  };
  return h;
}

/** Operations that are pending or scheduled, in every table. */
async function anyPending(database: CcatDatabase): Promise<number> {
  const counts = await countsByTypeAndStatus(database.db);
  return counts
    .filter((c) => c.status === 'pending' || c.status === 'scheduled')
    .reduce((n, c) => n + c.count, 0);
}
