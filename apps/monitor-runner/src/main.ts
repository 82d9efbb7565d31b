#!/usr/bin/env node
// ccat-monitor: the only module of the monitor that touches the process. @ccat/service's runService
// reads the configuration, builds the pool, the Redis client and the logger and owns the signals;
// this wires createMonitorRunner. SIGTERM/SIGINT/SIGHUP finish the current pass and close (bounded);
// a second one exits at once.
import { createDatabase, migrateWhenReachable } from '@ccat/db';
import { runService } from '@ccat/service';
import { loadMonitorConfig, MONITOR_SECRET_FILES } from './config.js';
import { monitorStopBounds } from './shutdown-bound.js';
import { createMonitorRunner } from './runner.js';

const USAGE = `usage: ccat-monitor [--config file.json]
Runs the stalled-task monitor and the notification outbox relay, and serves /metrics, /healthz, /readyz.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL,
REDIS_URL, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD, SMTP_PASSWORD, SLACK_TOKEN, DASHBOARD_TOKEN, DASHBOARD_ADMIN_TOKEN; NAME_FILE reads any of these secrets from a file).`;

await runService(process, {
  name: 'ccat-monitor',
  usage: USAGE,
  load: loadMonitorConfig,
  // Secrets may come from files (Docker/Kubernetes secrets): NAME_FILE=/run/secrets/name.
  secretFiles: MONITOR_SECRET_FILES,
  idField: 'monitorId',
  id: (config) => config.monitorId,
  stopping: 'finishing the current pass',
  // SIGTERM ends within shutdown.timeoutMs (8 s at the default), exit 0, whatever the servers do.
  bounds: ({ shutdown }) => monitorStopBounds(shutdown),
  database: {
    open: createDatabase,
    migrate: (d, schema, onWaiting) => migrateWhenReachable(d.db, { schema, onWaiting }),
  },
  create: (c) =>
    createMonitorRunner({
      config: c.config,
      monitorId: c.id,
      db: c.database.db,
      redis: c.redis('redis'),
      logger: c.logger,
      pid: c.pid,
    }),
});
