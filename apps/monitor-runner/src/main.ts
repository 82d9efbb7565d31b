#!/usr/bin/env node
// ccat-monitor: the only module of the monitor that touches the process. Reads configuration,
// builds the pool, the Redis client and the logger, wires createMonitorRunner, and owns the
// signals: SIGTERM/SIGINT/SIGHUP finish the current pass and close (bounded); a second one exits at once.
import { hostname } from 'node:os';
import { classifyError, ConfigurationError, redactSecrets } from '@ccat/errors';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  closeRedis,
  ConnectionFaultLog,
  createServiceLogger,
  reportUnhandled,
  migrateServiceDatabase,
  openServiceDatabase,
  readServiceConfig,
  REDIS_COMMAND_TIMEOUT_MS,
  watchRedis,
} from '@ccat/worker';
import { loadMonitorConfig } from './config.js';
import { createMonitorRunner, type MonitorRunner } from './runner.js';

const USAGE = `usage: ccat-monitor [--config file.json]
Runs the stalled-task monitor and the notification outbox relay, and serves /metrics, /healthz, /readyz.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL,
REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN; SMTP_PASSWORD_FILE / SLACK_TOKEN_FILE read a secret from a file).`;

/** True when `p` settles within `ms`; never rejects. */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(t);
      resolve(true);
    };
    p.then(done, done);
  });
}

/** The logger once configuration is read; before that, the last-resort handler writes to stderr. */
let fatalLogger: Logger | undefined;

/** Last resort: an error nothing else handled (one fatal line, exit 1). No connection fault is meant to reach it. */
function onUnhandled(kind: 'uncaughtException' | 'unhandledRejection') {
  return (thrown: unknown) => {
    console.error(reportUnhandled('ccat-monitor', kind, thrown, fatalLogger));
    process.exit(1);
  };
}
process.on('uncaughtException', onUnhandled('uncaughtException'));
process.on('unhandledRejection', onUnhandled('unhandledRejection'));

async function main(): Promise<void> {
  const loaded = await readServiceConfig({
    name: 'ccat-monitor',
    usage: USAGE,
    argv: process.argv.slice(2),
    env: process.env,
    load: loadMonitorConfig,
    // Secrets may come from files (Docker/Kubernetes secrets): NAME_FILE=/run/secrets/name.
    secretFiles: ['SMTP_PASSWORD', 'SLACK_TOKEN'],
  });
  if ('exitCode' in loaded) {
    if (loaded.stdout !== undefined) console.log(loaded.stdout);
    if (loaded.stderr !== undefined) console.error(loaded.stderr);
    process.exitCode = loaded.exitCode;
    return;
  }
  const { config } = loaded;
  const monitorId = config.monitorId ?? `${hostname()}-${process.pid}`;
  const logger = createServiceLogger(
    config.log,
    { service: 'ccat-monitor', monitorId, pid: process.pid },
    process.stdout.isTTY,
  );
  fatalLogger = logger;
  const closers: (() => Promise<unknown>)[] = [];
  /** Drop a connection at once (no reply awaited): for servers that stopped answering. */
  const droppers: (() => void)[] = [];
  const closeConnections = async () => {
    await Promise.allSettled(closers.map((close) => close()));
  };
  let runner: MonitorRunner | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal }, 'signal received: finishing the current pass (send it again to exit at once)');
    // Last resort only: every step below is bounded to end before it.
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdown.timeoutMs).unref();
    void boundedShutdown(Date.now() + config.shutdown.timeoutMs);
  };
  /**
   * SIGTERM within shutdown.timeoutMs, exit 0, whatever the servers do: the runner's steps (the
   * monitor bounds its own pass at 5/6 of the bound at most) get until 85 % of it, closing the
   * connections until 93 %; a step still waiting then (a paused Redis or PostgreSQL answers nothing)
   * is abandoned with a warning and its connections dropped. Every abandoned step is idempotent work
   * the next process redoes (the pass's lease lapses, an open transaction rolls back on disconnect).
   */
  const boundedShutdown = async (deadline: number) => {
    const total = config.shutdown.timeoutMs;
    const until = (share: number) => Math.max(0, deadline - total * (1 - share) - Date.now());
    const runnerClosed = await settlesWithin(
      Promise.resolve(runner?.close()).catch((e: unknown) =>
        logger.error({ err: classifyError(e).message }, 'shutdown had failures'),
      ),
      until(0.85),
    );
    if (!runnerClosed) logger.warn('shutdown steps still waiting at 85 % of shutdown.timeoutMs: abandoned');
    if (!(await settlesWithin(closeConnections(), until(0.93)))) {
      logger.warn('connections did not close in time (a server not answering): dropped');
      for (const drop of droppers) drop();
    }
    process.exit(0);
  };
  // Installed before the start: a monitor waiting for its database stops on the first signal.
  // SIGHUP (a closed terminal, a supervisor's stop) is a stop too, not Node's immediate exit.
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    const database = openServiceDatabase(config.database, `ccat-monitor ${monitorId}`, logger);
    closers.push(() => database.close());
    const redis = new Redis(config.redis.url, {
      maxRetriesPerRequest: 1,
      // A hung Redis fails the pass's command after this long instead of holding the pass (and a
      // shutdown waiting for it) forever.
      commandTimeout: REDIS_COMMAND_TIMEOUT_MS,
      connectionName: `ccat-monitor:${monitorId}`,
    });
    watchRedis(redis, new ConnectionFaultLog(logger, 'Redis'), 'redis');
    closers.push(() => closeRedis(redis));
    droppers.push(() => redis.disconnect());
    runner = createMonitorRunner({ config, monitorId, db: database.db, redis, logger, pid: process.pid });
    if (config.database.migrate)
      await migrateServiceDatabase(config.database, `ccat-monitor ${monitorId}`, logger);
    await runner.start();
  } catch (e) {
    // Nothing ran yet (the relay, the loop and the health key start last): stop what did start and
    // exit at once with the classified code.
    const err = classifyError(e);
    logger.fatal({ err: err.message, errorCode: err.code }, 'monitor could not start');
    console.error(`ccat-monitor: could not start: ${redactSecrets(err.message, 2000)} [${err.code}]`);
    await runner?.close().catch(() => undefined);
    await closeConnections();
    // A configuration the schema could not catch (a port in use, a refused database) is exit 2.
    process.exit(err instanceof ConfigurationError || err.name === 'ConfigurationError' ? 2 : 1);
  }
}

await main();
