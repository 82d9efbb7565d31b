#!/usr/bin/env node
// ccat-monitor: the only module of the monitor that touches the process. @ccat/service's runService
// reads the configuration, builds the pool, the Redis client and the logger and owns the signals;
// this wires createMonitorRunner. SIGTERM/SIGINT/SIGHUP finish the current pass and close (bounded);
// a second one exits at once.
import { runService } from '@ccat/service';
import { loadMonitorConfig } from './config.js';
import { createMonitorRunner } from './runner.js';

const USAGE = `usage: ccat-monitor [--config file.json]
Runs the stalled-task monitor and the notification outbox relay, and serves /metrics, /healthz, /readyz.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL,
REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN, DASHBOARD_TOKEN, DASHBOARD_ADMIN_TOKEN; NAME_FILE reads any of these secrets from a file).`;

await runService(process, {
  name: 'ccat-monitor',
  usage: USAGE,
  load: loadMonitorConfig,
  // Secrets may come from files (Docker/Kubernetes secrets): NAME_FILE=/run/secrets/name.
  secretFiles: ['SMTP_PASSWORD', 'SLACK_TOKEN', 'DASHBOARD_TOKEN', 'DASHBOARD_ADMIN_TOKEN'],
  idField: 'monitorId',
  id: (config) => config.monitorId,
  stopping: 'finishing the current pass',
  // SIGTERM ends within shutdown.timeoutMs, exit 0, whatever the servers do: the runner's steps (the
  // monitor bounds its own pass at 5/6 of the bound at most) get until 85 % of it, closing the
  // connections until 93 %. Every abandoned step is idempotent work the next process redoes (the
  // pass's lease lapses, an open transaction rolls back on disconnect).
  bounds: ({ shutdown: { timeoutMs } }) => ({
    limitMs: timeoutMs,
    appMs: timeoutMs * 0.85,
    connectionsMs: timeoutMs * 0.93,
    closeTimeoutMs: timeoutMs,
  }),
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
