// The in-process monitor tests' one set-up, as vitest fixtures (`test.extend`, builder form):
//
//   monitorTest(label, { max })  a `test` (use it as `it`) whose context gives
//     prefix     file scope  `uniquePrefix(label)`: this file's Redis key prefix (build per-test
//                            prefixes on it, e.g. `${prefix}a:`).
//     schema     file scope  `createTestDatabase(label, { max })`: the file's own migrated schema and
//                            its pool (`max` connections, default 4). Closed (pool closed, schema
//                            dropped) when the file ends.
//     database   file scope  `schema.database` (its `db` is what the files query).
//     locations  file scope  `seedLocations(database.db)`: the two seeded sites, seeded once, on
//                            first use.
//     redis      file scope  `connectTestRedis()`. At the file's end the keys under `prefix` are
//                            deleted, then the client is disconnected.
//     monitor    test scope  `monitor(configInput, options?)`: a new Monitor on the file's pool and
//                            Redis, built as src/runner.ts builds it (config parsed by
//                            monitorConfigSchema, recovery on the same pool with the config's
//                            recovery policy), silent logger, new metrics, monitorId 'test-monitor'
//                            unless `options` says otherwise. Every Monitor it made is closed when
//                            the test ends (Monitor.close is safe to call twice, so a test may close
//                            one itself first).
//     setup      test scope  all of the above in one object (MonitorContext), for a test to take as
//                            `async ({ setup: { database, redis, monitor } }) => …`, or to hand to
//                            the file's helpers whole.
//
// A file with set-up of its own adds it with `.extend(…)` on the returned test (a second pool, a
// second Redis connection a test disconnects on purpose).
//
// File-scoped fixtures are set up on the first test that uses them (or one that depends on them)
// and torn down after the file's last test, after its afterAll hooks.
import type { CcatDatabase, Database } from '@ccat/db';
import {
  createTestDatabase,
  seedLocations,
  type TestDatabase,
  type TestDatabaseOptions,
  type TestLocations,
} from '@ccat/db/testing';
import { createHandlerRegistry, type HandlerRegistry } from '@ccat/recovery-handlers';
import { connectTestRedis, deleteKeysWithPrefix, uniquePrefix } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { pino, type Logger } from 'pino';
import { test } from 'vitest';
import {
  createMonitorMetrics,
  Monitor,
  monitorConfigSchema,
  type MonitorConfigInput,
  type MonitorMetrics,
} from '../../src/index.js';

/** What a test may set on a Monitor the `monitor` fixture builds; the rest is the files' common set-up. */
export interface MonitorOptions {
  /** Default 'test-monitor'. */
  readonly monitorId?: string;
  /** Default `createHandlerRegistry()` (the built-in handlers). */
  readonly registry?: HandlerRegistry;
  /** Default `createMonitorMetrics()`, new for each Monitor. */
  readonly metrics?: MonitorMetrics;
  /** Default a silent pino logger; used by the monitor and its recovery alike. */
  readonly logger?: Logger;
  /** Default the file's `redis` (a private redis-server's client, for a test that restarts it). */
  readonly redis?: Redis;
  /** The pool the monitor and its recovery use; default the file's (`database.db`). */
  readonly db?: Kysely<Database>;
}

export type MonitorFactory = (config: MonitorConfigInput, options?: MonitorOptions) => Monitor;

/** The `setup` fixture: what a `monitorTest` test gets, for the files' helpers to take (a `Pick` of). */
export interface MonitorContext {
  readonly prefix: string;
  readonly schema: TestDatabase;
  readonly database: CcatDatabase;
  readonly locations: TestLocations;
  readonly redis: Redis;
  readonly monitor: MonitorFactory;
}

const silent = pino({ level: 'silent' });

/**
 * The monitor tests' `test` (see the module comment): `label` names the file's schema and Redis key
 * prefix; `database.max` is its pool size (default 4).
 */
export function monitorTest(label: string, database: Pick<TestDatabaseOptions, 'max'> = {}) {
  return (
    test
      .extend('prefix', { scope: 'file' }, uniquePrefix(label))
      // eslint-disable-next-line no-empty-pattern -- vitest reads a fixture's dependencies from this pattern
      .extend('schema', { scope: 'file' }, async ({}, { onCleanup }): Promise<TestDatabase> => {
        const schema = await createTestDatabase(label, database);
        onCleanup(() => schema.close());
        return schema;
      })
      .extend('database', { scope: 'file' }, ({ schema }): CcatDatabase => schema.database)
      .extend('locations', { scope: 'file' }, ({ database }): Promise<TestLocations> =>
        seedLocations(database.db),
      )
      .extend('redis', { scope: 'file' }, async ({ prefix }, { onCleanup }): Promise<Redis> => {
        const redis = await connectTestRedis();
        onCleanup(async () => {
          await deleteKeysWithPrefix(redis, prefix);
          redis.disconnect();
        });
        return redis;
      })
      .extend('monitor', ({ database, redis }, { onCleanup }): MonitorFactory => {
        const made: Monitor[] = [];
        onCleanup(async () => {
          await Promise.all(made.map((m) => m.close()));
        });
        return (input, options = {}) => {
          const config = monitorConfigSchema.parse(input);
          const { db = database.db, logger = silent, registry = createHandlerRegistry() } = options;
          const m = new Monitor({
            db,
            redis: options.redis ?? redis,
            logger,
            config,
            monitorId: options.monitorId ?? 'test-monitor',
            recovery: { db, registry, policy: config.recovery, logger },
            metrics: options.metrics ?? createMonitorMetrics(),
          });
          made.push(m);
          return m;
        };
      })
      .extend('setup', ({ prefix, schema, database, locations, redis, monitor }): MonitorContext => ({
        prefix,
        schema,
        database,
        locations,
        redis,
        monitor,
      }))
  );
}
