#!/usr/bin/env node
// ccat-worker: the only module that touches the process. Reads configuration, builds the pool, the
// Redis clients and the logger, wires createWorker, and owns the signals: the first SIGTERM/SIGINT
// shuts down gracefully (bounded), a second one forces.
import { hostname } from 'node:os';
import { migrateToLatest } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { Redis } from 'ioredis';
import { loadWorkerConfig } from './config.js';
import { createServiceLogger, openServiceDatabase, readServiceConfig } from './service.js';
import { createWorker } from './worker.js';

const USAGE = `usage: ccat-worker [--config file.json]
Runs BullMQ workers for the CCAT pipeline operations and the dispatcher.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL, REDIS_URL).`;

async function main(): Promise<void> {
  const loaded = await readServiceConfig({
    name: 'ccat-worker',
    usage: USAGE,
    argv: process.argv.slice(2),
    env: process.env,
    load: loadWorkerConfig,
  });
  if ('exitCode' in loaded) {
    if (loaded.stdout !== undefined) console.log(loaded.stdout);
    if (loaded.stderr !== undefined) console.error(loaded.stderr);
    process.exitCode = loaded.exitCode;
    return;
  }
  const { config } = loaded;
  const workerId = config.workerId ?? `${hostname()}-${process.pid}`;
  const logger = createServiceLogger(
    config.log,
    { service: 'ccat-worker', workerId, pid: process.pid },
    process.stdout.isTTY,
  );
  const database = openServiceDatabase(config.database, `ccat-worker ${workerId}`, logger);
  const redis = new Redis(config.redis.url, {
    maxRetriesPerRequest: 1,
    connectionName: `ccat-worker:${workerId}`,
  });
  const bullConnection = new Redis(config.redis.url, {
    maxRetriesPerRequest: null,
    connectionName: `ccat-worker-bull:${workerId}`,
  });
  for (const [name, client] of [
    ['redis', redis],
    ['bull', bullConnection],
  ] as const) {
    client.on('error', (e) =>
      logger.warn({ client: name, err: classifyError(e).message }, 'Redis connection error; reconnecting'),
    );
  }
  const closeConnections = async () => {
    await Promise.allSettled([database.close(), redis.quit(), bullConnection.quit()]);
  };
  let app: ReturnType<typeof createWorker> | undefined;
  try {
    app = createWorker({
      config,
      workerId,
      db: database.db,
      redis,
      bullConnection,
      logger,
      exit: (signal) => process.kill(process.pid, signal),
      pid: process.pid,
    });
    if (config.database.migrate) await migrateToLatest(database.db, { schema: config.database.schema });
    await app.start();
  } catch (e) {
    const err = classifyError(e);
    logger.fatal({ err: err.message, errorCode: err.code }, 'worker could not start');
    console.error(`ccat-worker: could not start: ${err.message} [${err.code}]`);
    await app?.close().catch(() => undefined);
    await closeConnections();
    // A configuration the schema could not catch (e.g. rejected by a package) is still exit 2.
    process.exitCode = err.code === 'CONFIGURATION_ERROR' ? 2 : 1;
    return;
  }
  const running = app;

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals === 1) {
      logger.info({ signal }, 'signal received: shutting down gracefully (send it again to force)');
      // The whole shutdown is bounded: grace + release/close time + a margin, then exit anyway.
      const limit = setTimeout(
        () => {
          logger.error('shutdown took too long; exiting');
          process.exit(1);
        },
        config.shutdown.graceMs + config.shutdown.closeTimeoutMs + 5_000,
      );
      limit.unref();
      running
        .close()
        .catch((e: unknown) => logger.error({ err: classifyError(e).message }, 'shutdown had failures'))
        .finally(() => void closeConnections().finally(() => process.exit(0)));
    } else {
      logger.warn({ signal }, 'second signal: forcing shutdown');
      void running.forceClose().finally(() => void closeConnections().finally(() => process.exit(130)));
    }
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

await main();
