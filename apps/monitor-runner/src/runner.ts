// createMonitorRunner: the monitor loop, the notification outbox relay, the service health key and
// /metrics, composed from the packages. Owns no process state: main.ts passes the connections and
// the logger and owns the signals.
import {
  assertSearchPath,
  countUndeliveredNotifications,
  createPgOutboxStore,
  migrationStatus,
  type Database,
} from '@ccat/db';
import { eventLevel } from '@ccat/errors';
import { ServiceHealthReporter } from '@ccat/heartbeat';
import { createNotifier, createOutboxRelay, type OutboxRelay } from '@ccat/notifier';
import { createHandlerRegistry, type HandlerRegistry } from '@ccat/recovery-handlers';
import { shutdownSteps, startServing, type HttpServer } from '@ccat/service';
import type { RedisConnection } from '@ccat/service';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { MonitorConfig } from './config.js';
import { startDashboard } from './dashboard/server.js';
import { createMonitorMetrics, type MonitorMetrics } from './metrics.js';
import { Monitor } from './monitor.js';
import { RedisPolicyCheck, REQUIRED_MAXMEMORY_POLICY } from './redis-policy.js';

export interface MonitorRunnerDeps {
  readonly config: MonitorConfig;
  readonly monitorId: string;
  readonly db: Kysely<Database>;
  readonly redis: RedisConnection;
  readonly logger: Logger;
  /** The schema the tables live in (readiness compares its migrations with this code's). Default `config.database.schema`. */
  readonly schema?: string;
  readonly pid?: number;
  readonly registry?: HandlerRegistry;
}

export interface MonitorRunner extends AsyncDisposable {
  readonly monitor: Monitor;
  readonly relay: OutboxRelay | undefined;
  readonly metrics: MonitorMetrics;
  readonly httpPort: number | undefined;
  /** The dashboard's port once started (dashboard.enabled), else undefined. */
  readonly dashboardPort: number | undefined;
  /**
   * Starts, in this order: the HTTP server (a port in use throws `ConfigurationError` before any
   * work), then waits for the database (reachable and migrated; logged once, /readyz says why not
   * ready), then the health key, the monitor loop and the relay. Resolves once they run, or once
   * `close()` was called while it waited (nothing started). Throws `ConfigurationError` when
   * PostgreSQL refuses the configuration.
   */
  start(): Promise<void>;
  /** Finishes the current pass and relay pass, closes what it started; bounded by shutdown.timeoutMs. */
  close(): Promise<void>;
}

/**
 * One monitor process's work, composed from the packages. It owns what it creates: the stalled-task
 * `Monitor` loop, the notifier and the outbox relay (when `relay.enabled`), the service health
 * reporter and the /metrics, /healthz, /readyz server. It does not own `deps`' pool, Redis client
 * or logger: the caller opens and closes them (main.ts through runService).
 *
 * Lifecycle: `start()` once (HTTP server, then it waits for the database and Redis, then the health
 * key, the loop and the relay); `close()` is memoized: it finishes the current pass and relay pass
 * and closes what it started, every step even when one fails. Guarantees: each stall is recovered
 * exactly once however many replicas run (conditional updates on the attempt), each recovery writes
 * its event and notification in the same transaction, and each notification is delivered once per
 * channel (the relay's lease bounds every send).
 */
export function createMonitorRunner(deps: MonitorRunnerDeps): MonitorRunner {
  const { config, logger, monitorId } = deps;
  const log = logger.child({ monitorId });
  const metrics = createMonitorMetrics({ undelivered: () => countUndeliveredNotifications(deps.db) });
  const registry = deps.registry ?? createHandlerRegistry();
  const monitor = new Monitor({
    db: deps.db,
    redis: deps.redis,
    logger: log,
    config,
    monitorId,
    recovery: { db: deps.db, registry, policy: config.recovery, logger: log },
    metrics,
  });
  const notifier = createNotifier({ config: config.notifier, logger: log.child({ component: 'notifier' }) });
  const { notifications } = metrics;
  const relay = config.relay.enabled
    ? createOutboxRelay({
        store: createPgOutboxStore(deps.db),
        notifier,
        logger: log.child({ component: 'relay' }),
        relayId: `relay-${monitorId}`,
        onPass: (r) => {
          for (const k of ['sent', 'failed', 'digested', 'retried', 'deferred', 'exhausted'] as const)
            if (r[k] > 0) notifications.inc({ result: k }, r[k]);
          if (r.leaseLost > 0) notifications.inc({ result: 'lease_lost' }, r.leaseLost);
        },
      })
    : undefined;
  const health = new ServiceHealthReporter({
    redis: deps.redis,
    keyPrefix: config.keyPrefix,
    serviceType: 'monitor',
    serviceName: monitorId,
    ttlMs: Math.max(100, config.monitor.livenessTimeoutMs), // the health key's TTL floor
    refreshMs: config.monitor.heartbeatIntervalMs,
    logger: log,
    ...(deps.pid !== undefined && { pid: deps.pid }),
  });
  const policyCheck = new RedisPolicyCheck({
    redis: deps.redis,
    logger: log,
    gauge: metrics.redisMaxmemoryPolicyOk,
    notify: async ({ policy, node }) => {
      const where = node === undefined ? '' : ` on cluster primary ${node}`;
      await createPgOutboxStore(deps.db).enqueue({
        level: eventLevel('redis_eviction_policy'),
        eventKind: 'redis_eviction_policy',
        subject: `Redis maxmemory-policy is ${policy}${where}, not ${REQUIRED_MAXMEMORY_POLICY}`,
        // What was done and what to do: the catalogue's, shown once by every channel.
        body: `What: monitor ${monitorId} read Redis maxmemory-policy ${policy === 'unknown' ? 'as unknown (CONFIG GET refused)' : policy}${where}; the recovery system needs ${REQUIRED_MAXMEMORY_POLICY}.`,
        context: { policy, monitorId, ...(node !== undefined && { node }) },
        dedupKey: `redis_eviction_policy:${policy}`,
      });
    },
  });
  let http: HttpServer | undefined;
  let dashboard: HttpServer | undefined;
  let closing: Promise<void> | undefined;
  let working = false;
  // close() during start (while waiting for the database) ends the wait: nothing starts.
  const stopping = new AbortController();
  const schema = deps.schema ?? config.database.schema;

  const runner: MonitorRunner = {
    monitor,
    relay,
    metrics,
    get httpPort() {
      return http?.port;
    },
    get dashboardPort() {
      return dashboard?.port;
    },
    async start() {
      const ready = await startServing({
        http: config.http,
        registry: metrics.registry,
        healthDetails: () => ({ monitorId }),
        migrations: () => migrationStatus(deps.db, { schema }),
        redis: { redis: deps.redis },
        working: () => working && closing === undefined,
        schema,
        searchPath: () => assertSearchPath(deps.db, schema),
        logger: log,
        signal: stopping.signal,
        listening: async (server) => {
          http = server;
          if (config.dashboard.enabled)
            dashboard = await startDashboard({ config, db: deps.db, redis: deps.redis, logger: log });
        },
      });
      if (!ready) return;
      await health.start();
      await policyCheck.start();
      if (stopping.signal.aborted) return;
      monitor.start();
      relay?.start();
      working = true;
      log.info(
        {
          httpPort: http?.port,
          dashboardPort: dashboard?.port,
          relay: relay !== undefined,
          loopIntervalMs: config.monitor.loopIntervalMs,
          livenessTimeoutMs: config.monitor.livenessTimeoutMs,
          progressTimeoutMs: config.monitor.progressTimeoutMs,
        },
        'monitor started',
      );
    },
    close() {
      stopping.abort();
      return (closing ??= shutdownSteps(log, [
        ['monitor', () => monitor.close()],
        ['relay', async () => relay?.close()],
        ['notifier', () => notifier.close()],
        ['health key', () => health.close()],
        ['redis policy check', () => Promise.resolve(policyCheck.close())],
        ['http', async () => http?.close()],
        ['dashboard', async () => dashboard?.close()],
      ]).finally(() => log.info('monitor stopped')));
    },
    [Symbol.asyncDispose]() {
      return runner.close();
    },
  };
  return runner;
}
