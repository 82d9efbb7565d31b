#!/usr/bin/env node
// ccat-worker: the only module that touches the process. Reads configuration, builds the pool, the
// Redis clients and the logger, wires createWorker, and owns the signals: the first
// SIGTERM/SIGINT/SIGHUP shuts down gracefully (bounded), a second one forces.
import { hostname } from 'node:os';
import { classifyError, ConfigurationError, redactSecrets } from '@ccat/errors';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { loadWorkerConfig } from './config.js';
import {
  closeRedis,
  ConnectionFaultLog,
  reportUnhandled,
  REDIS_COMMAND_TIMEOUT_MS,
  watchRedis,
} from './connectivity.js';
import {
  createServiceLogger,
  migrateServiceDatabase,
  openServiceDatabase,
  readServiceConfig,
} from './service.js';
import { createWorker } from './worker.js';

const USAGE = `usage: ccat-worker [--config file.json]
Runs BullMQ workers for the CCAT pipeline operations and the dispatcher.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL, REDIS_URL).`;

/** The logger once configuration is read; before that, the last-resort handler writes to stderr. */
let fatalLogger: Logger | undefined;

/** Last resort: an error nothing else handled (one fatal line, exit 1). No connection fault is meant to reach it. */
function onUnhandled(kind: 'uncaughtException' | 'unhandledRejection') {
  return (thrown: unknown) => {
    console.error(reportUnhandled('ccat-worker', kind, thrown, fatalLogger));
    process.exit(1);
  };
}
process.on('uncaughtException', onUnhandled('uncaughtException'));
process.on('unhandledRejection', onUnhandled('unhandledRejection'));

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
  fatalLogger = logger;
  const closers: (() => Promise<unknown>)[] = [];
  /** Drop a connection at once (no reply awaited): for servers that stopped answering. */
  const droppers: (() => void)[] = [];
  const closeConnections = async () => {
    await Promise.allSettled(closers.map((close) => close()));
  };
  /**
   * Closes the connections within `ms` (never more than shutdown.closeTimeoutMs): a server that
   * answers nothing (a paused Redis or PostgreSQL) would hold `quit()` or `pool.end()` forever and
   * the process would end by the last-resort timer with exit 1. Past the bound the connections are
   * dropped with a warning.
   */
  const closeConnectionsWithin = async (ms: number) => {
    const bound = Math.max(0, Math.min(ms, config.shutdown.closeTimeoutMs));
    let timer: NodeJS.Timeout | undefined;
    const closed = await Promise.race([
      closeConnections().then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), bound))),
    ]);
    clearTimeout(timer);
    if (!closed) {
      logger.warn('connections did not close in time (a server not answering): dropped');
      for (const drop of droppers) drop();
    }
  };
  let app: ReturnType<typeof createWorker> | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    const running = app;
    if (running === undefined) {
      // Before the app exists there is nothing to drain.
      void closeConnectionsWithin(config.shutdown.closeTimeoutMs).finally(() =>
        process.exit(signals === 1 ? 0 : 130),
      );
      return;
    }
    if (signals === 1) {
      logger.info({ signal }, 'signal received: shutting down gracefully (send it again to force)');
      // The whole shutdown is bounded: grace + release/close time + a margin, then exit anyway.
      const limitMs = config.shutdown.graceMs + config.shutdown.closeTimeoutMs + 5_000;
      const deadline = Date.now() + limitMs;
      const limit = setTimeout(() => {
        logger.error('shutdown took too long; exiting');
        process.exit(1);
      }, limitMs);
      limit.unref();
      running
        .close()
        .catch((e: unknown) => logger.error({ err: classifyError(e).message }, 'shutdown had failures'))
        .finally(
          () => void closeConnectionsWithin(deadline - 1000 - Date.now()).finally(() => process.exit(0)),
        );
    } else {
      logger.warn({ signal }, 'second signal: forcing shutdown');
      void running
        .forceClose()
        .finally(() => void closeConnectionsWithin(1000).finally(() => process.exit(130)));
    }
  };
  // Installed before the start: a worker waiting for its database stops on the first signal.
  // SIGHUP (a closed terminal, a supervisor's stop) is a stop too: by default it would end the
  // process at once, leaving its tasks in progress until the stall timeout.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const database = openServiceDatabase(config.database, `ccat-worker ${workerId}`, logger);
    closers.push(() => database.close());
    const redisFaults = new ConnectionFaultLog(logger, 'Redis');
    const redis = new Redis(config.redis.url, {
      maxRetriesPerRequest: 1,
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectionName: `ccat-worker:${workerId}`,
    });
    watchRedis(redis, redisFaults, 'redis');
    closers.push(() => closeRedis(redis));
    droppers.push(() => redis.disconnect());
    const bullConnection = new Redis(config.redis.url, {
      maxRetriesPerRequest: null,
      connectionName: `ccat-worker-bull:${workerId}`,
    });
    watchRedis(bullConnection, redisFaults, 'bull');
    closers.push(() => closeRedis(bullConnection));
    droppers.push(() => bullConnection.disconnect());
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
    if (config.database.migrate)
      await migrateServiceDatabase(config.database, `ccat-worker ${workerId}`, logger);
    await app.start();
  } catch (e) {
    const err = classifyError(e);
    logger.fatal({ err: err.message, errorCode: err.code }, 'worker could not start');
    console.error(`ccat-worker: could not start: ${redactSecrets(err.message, 2000)} [${err.code}]`);
    await app?.close().catch(() => undefined);
    await closeConnections();
    // A configuration the schema could not catch (a port in use, a refused database) is exit 2.
    process.exit(err instanceof ConfigurationError || err.name === 'ConfigurationError' ? 2 : 1);
  }
}

await main();
