#!/usr/bin/env node
// ccat-monitor: the only module of the monitor that touches the process. Reads configuration,
// builds the pool, the Redis client and the logger, wires createMonitorRunner, and owns the
// signals: SIGTERM/SIGINT finish the current pass and close (bounded); a second one exits at once.
import { hostname } from 'node:os';
import { migrateToLatest } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { Redis } from 'ioredis';
import { createServiceLogger, openServiceDatabase, readServiceConfig } from '@ccat/worker';
import { loadMonitorConfig } from './config.js';
import { createMonitorRunner } from './runner.js';

const USAGE = `usage: ccat-monitor [--config file.json]
Runs the stalled-task monitor and the notification outbox relay, and serves /metrics, /healthz, /readyz.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL,
REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN; SMTP_PASSWORD_FILE / SLACK_TOKEN_FILE read a secret from a file).`;

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
  const database = openServiceDatabase(config.database, `ccat-monitor ${monitorId}`, logger);
  const redis = new Redis(config.redis.url, {
    maxRetriesPerRequest: 1,
    connectionName: `ccat-monitor:${monitorId}`,
  });
  redis.on('error', (e) =>
    logger.warn({ err: classifyError(e).message }, 'Redis connection error; reconnecting'),
  );
  const closeConnections = async () => {
    await Promise.allSettled([database.close(), redis.quit()]);
  };
  const runner = createMonitorRunner({ config, monitorId, db: database.db, redis, logger, pid: process.pid });
  try {
    if (config.database.migrate) await migrateToLatest(database.db, { schema: config.database.schema });
    await runner.start();
  } catch (e) {
    const err = classifyError(e);
    logger.fatal({ err: err.message, errorCode: err.code }, 'monitor could not start');
    console.error(`ccat-monitor: could not start: ${err.message} [${err.code}]`);
    await runner.close().catch(() => undefined);
    await closeConnections();
    // A configuration the schema could not catch (e.g. rejected by a package) is still exit 2.
    process.exitCode = err.code === 'CONFIGURATION_ERROR' ? 2 : 1;
    return;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    logger.info({ signal }, 'signal received: finishing the current pass (send it again to exit at once)');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, config.shutdown.timeoutMs).unref();
    runner
      .close()
      .catch((e: unknown) => logger.error({ err: classifyError(e).message }, 'shutdown had failures'))
      .finally(() => void closeConnections().finally(() => process.exit(0)));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

await main();
