#!/usr/bin/env node
// ccat-worker: the only module that touches the process. @ccat/service's runService reads the
// configuration, builds the pool, the Redis clients and the logger and owns the signals; this wires
// createWorker. The first SIGTERM/SIGINT/SIGHUP shuts down gracefully (bounded), a second one forces.
import { createDatabase, migrateWhenReachable } from '@ccat/db';
import { runService } from '@ccat/service';
import { loadWorkerConfig, WORKER_SECRET_FILES } from './config.js';
import { workerStopBounds } from './shutdown-bound.js';
import { createWorker } from './worker.js';

const USAGE = `usage: ccat-worker [--config file.json]
Runs BullMQ workers for the CCAT pipeline operations and the dispatcher.
Configuration: defaults → the JSON file (--config or CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL,
REDIS_URL, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD; NAME_FILE reads any of these secrets from a file).`;

await runService(process, {
  name: 'ccat-worker',
  usage: USAGE,
  load: loadWorkerConfig,
  // Secrets may come from files (Docker/Kubernetes secrets): NAME_FILE=/run/secrets/name.
  secretFiles: WORKER_SECRET_FILES,
  idField: 'workerId',
  id: (config) => config.workerId,
  stopping: 'shutting down gracefully',
  // The whole shutdown: grace + release/close time + a margin (8 s at the defaults).
  bounds: ({ shutdown }) => workerStopBounds(shutdown),
  database: {
    open: createDatabase,
    migrate: (d, schema, onWaiting) => migrateWhenReachable(d.db, { schema, onWaiting }),
  },
  create: (c) =>
    createWorker({
      config: c.config,
      workerId: c.id,
      db: c.database.db,
      // The heartbeat's connection: its beats wait 5 s (the emitter's commandTimeoutMs), but an answer
      // up to a liveness bound late is still heard, so a link slower than 5 s still learns what Redis
      // lost (issue 13 adversary: a flush and a 5.5 s link; the member never came back).
      redis: c.redis('redis', { commandTimeoutMs: c.config.heartbeat.livenessTimeoutMs }),
      bullConnection: c.redis('bull'),
      logger: c.logger,
      exit: (signal) => process.kill(process.pid, signal),
      pid: c.pid,
    }),
});
