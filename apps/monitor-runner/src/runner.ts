// createMonitorRunner: the monitor loop, the notification outbox relay, the service health key and
// /metrics, composed from the packages. Owns no process state: main.ts passes the connections and
// the logger and owns the signals.
import { createPgOutboxStore, type Database } from '@ccat/db';
import { ServiceHealthReporter, startHealthServer, type HealthServer } from '@ccat/heartbeat';
import { createNotifier, createOutboxRelay, type OutboxRelay } from '@ccat/notifier';
import { createHandlerRegistry, type HandlerRegistry } from '@ccat/recovery-handlers';
import { shutdownSteps } from '@ccat/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import type { MonitorConfig } from './config.js';
import { createMonitorMetrics, type MonitorMetrics } from './metrics.js';
import { Monitor } from './monitor.js';

export interface MonitorRunnerDeps {
  readonly config: MonitorConfig;
  readonly monitorId: string;
  readonly db: Kysely<Database>;
  readonly redis: Redis;
  readonly logger: Logger;
  readonly pid?: number;
  readonly registry?: HandlerRegistry;
}

export interface MonitorRunner extends AsyncDisposable {
  readonly monitor: Monitor;
  readonly relay: OutboxRelay | undefined;
  readonly metrics: MonitorMetrics;
  readonly httpPort: number | undefined;
  start(): Promise<void>;
  /** Finishes the current pass and relay pass, closes what it started; bounded by shutdown.timeoutMs. */
  close(): Promise<void>;
}

export function createMonitorRunner(deps: MonitorRunnerDeps): MonitorRunner {
  const { config, logger, monitorId } = deps;
  const log = logger.child({ monitorId });
  const metrics = createMonitorMetrics();
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
  const notifications = new Counter({
    name: 'ccat_notifications_total',
    help: 'Outbox notifications handled by the relay, by result (sent, failed, digested, retried, deferred)',
    labelNames: ['result'] as const,
    registers: [metrics.registry],
  });
  const relay = config.relay.enabled
    ? createOutboxRelay({
        store: createPgOutboxStore(deps.db),
        notifier,
        logger: log.child({ component: 'relay' }),
        relayId: `relay-${monitorId}`,
        onPass: (r) => {
          for (const k of ['sent', 'failed', 'digested', 'retried', 'deferred'] as const)
            if (r[k] > 0) notifications.inc({ result: k }, r[k]);
        },
      })
    : undefined;
  const health = new ServiceHealthReporter({
    redis: deps.redis,
    keyPrefix: config.keyPrefix,
    serviceType: 'monitor',
    serviceName: monitorId,
    logger: log,
    ...(deps.pid !== undefined && { pid: deps.pid }),
  });
  let http: HealthServer | undefined;
  let closing: Promise<void> | undefined;

  const runner: MonitorRunner = {
    monitor,
    relay,
    metrics,
    get httpPort() {
      return http?.port;
    },
    async start() {
      await health.start();
      monitor.start();
      relay?.start();
      if (config.http.port !== null) {
        http = await startHealthServer(config.http.host, config.http.port, {
          registry: metrics.registry,
          healthz: () => ({ ok: true, details: { monitorId } }),
          readyz: async () => {
            const redisOk = deps.redis.status === 'ready';
            const dbOk = await deps.db
              .selectNoFrom((eb) => eb.val(1).as('one'))
              .execute()
              .then(
                () => true,
                () => false,
              );
            return {
              ok: redisOk && dbOk,
              details: { redis: deps.redis.status, postgres: dbOk ? 'ok' : 'unreachable' },
            };
          },
        });
      }
      log.info(
        {
          httpPort: http?.port,
          relay: relay !== undefined,
          loopIntervalMs: config.monitor.loopIntervalMs,
          livenessTimeoutMs: config.monitor.livenessTimeoutMs,
          progressTimeoutMs: config.monitor.progressTimeoutMs,
        },
        'monitor started',
      );
    },
    close() {
      return (closing ??= shutdownSteps(log, [
        ['monitor', () => monitor.close()],
        ['relay', async () => relay?.close()],
        ['notifier', () => notifier.close()],
        ['health key', () => health.close()],
        ['http', async () => http?.close()],
      ]).finally(() => log.info('monitor stopped')));
    },
    [Symbol.asyncDispose]() {
      return runner.close();
    },
  };
  return runner;
}
