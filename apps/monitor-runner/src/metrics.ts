// Prometheus metrics of the monitor-runner (DESIGN §10).
import type { UndeliveredNotifications } from '@ccat/db';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MonitorMetrics {
  readonly registry: Registry;
  readonly stallsDetected: Counter<'reason'>;
  readonly recoveries: Counter<'outcome' | 'operation_type'>;
  readonly recoveryFailures: Counter;
  readonly detectionLatency: Histogram<'reason'>;
  readonly passDuration: Histogram;
  readonly passes: Counter<'result'>;
  readonly corruptEntries: Counter<'kind'>;
  readonly staleScheduled: Gauge<'operation_type'>;
  readonly inFlight: Gauge;
  /** Undelivered outbox notifications by level and state (pending: being retried or due; failed). */
  readonly notificationsUndelivered: Gauge<'level' | 'state'>;
  /** Age of the oldest undelivered notification by level (0 when there is none). */
  readonly notificationsUndeliveredOldest: Gauge<'level'>;
}

export interface MonitorMetricsOptions {
  /**
   * Reads the undelivered notifications at scrape time (`countUndeliveredNotifications` from
   * @ccat/db). When it fails (PostgreSQL unreachable) the last values stay. Absent: the gauges stay 0.
   */
  readonly undelivered?: () => Promise<readonly UndeliveredNotifications[]>;
}

const LEVELS = ['ERROR', 'WARNING', 'INFO'] as const;

export function createMonitorMetrics(options: MonitorMetricsOptions = {}): MonitorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ccat_monitor_' });
  const r = { registers: [registry] };
  const metrics: MonitorMetrics = {
    registry,
    stallsDetected: new Counter({
      name: 'ccat_stalls_detected_total',
      help: 'Stalled tasks found, by how',
      labelNames: ['reason'] as const,
      ...r,
    }),
    recoveries: new Counter({
      name: 'ccat_recoveries_total',
      help: 'Stall recoveries by outcome (stall_recovered, stall_exhausted, not_in_progress)',
      labelNames: ['outcome', 'operation_type'] as const,
      ...r,
    }),
    recoveryFailures: new Counter({
      name: 'ccat_recovery_failures_total',
      help: 'Recoveries that could not be applied (database unreachable); retried next pass',
      ...r,
    }),
    detectionLatency: new Histogram({
      name: 'ccat_stall_detection_latency_seconds',
      help: 'From a heartbeat (or progress) deadline to its recovery',
      labelNames: ['reason'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      ...r,
    }),
    passDuration: new Histogram({
      name: 'ccat_monitor_pass_seconds',
      help: 'Duration of one monitor pass',
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      ...r,
    }),
    passes: new Counter({
      name: 'ccat_monitor_passes_total',
      help: 'Monitor passes, by result (ran, lease_busy, failed)',
      labelNames: ['result'] as const,
      ...r,
    }),
    corruptEntries: new Counter({
      name: 'ccat_heartbeat_corrupt_entries_total',
      help: 'Corrupt or foreign heartbeat entries seen',
      labelNames: ['kind'] as const,
      ...r,
    }),
    staleScheduled: new Gauge({
      name: 'ccat_stale_scheduled_operations',
      help: 'Scheduled operations not claimed within the schedule timeout (re-dispatched by the workers)',
      labelNames: ['operation_type'] as const,
      ...r,
    }),
    inFlight: new Gauge({ name: 'ccat_in_flight_tasks_tracked', help: 'Tasks in the heartbeat set', ...r }),
    notificationsUndelivered: new Gauge({
      name: 'ccat_notifications_undelivered',
      help: 'Outbox notifications not delivered, by level and state (pending: tried without success or due; failed: given up). Alert on level="ERROR"',
      labelNames: ['level', 'state'] as const,
      async collect() {
        const rows = await read();
        if (rows === undefined) return;
        for (const level of LEVELS) {
          const row = rows.find((x) => x.level === level);
          this.set({ level, state: 'pending' }, row?.pending ?? 0);
          this.set({ level, state: 'failed' }, row?.failed ?? 0);
        }
      },
      ...r,
    }),
    notificationsUndeliveredOldest: new Gauge({
      name: 'ccat_notifications_undelivered_oldest_seconds',
      help: 'Age of the oldest undelivered outbox notification, by level (0: none)',
      labelNames: ['level'] as const,
      async collect() {
        const rows = await read();
        if (rows === undefined) return;
        for (const level of LEVELS) {
          const row = rows.find((x) => x.level === level);
          this.set(
            { level },
            row === undefined ? 0 : Math.max(0, (Date.now() - row.oldestAt.getTime()) / 1000),
          );
        }
      },
      ...r,
    }),
  };

  // One query serves both gauges of a scrape.
  let last: { at: number; rows: Promise<readonly UndeliveredNotifications[] | undefined> } | undefined;
  function read(): Promise<readonly UndeliveredNotifications[] | undefined> {
    const query = options.undelivered;
    if (query === undefined) return Promise.resolve(undefined);
    if (last === undefined || Date.now() - last.at > 1000)
      last = {
        at: Date.now(),
        rows: query().catch(() => undefined),
      };
    return last.rows;
  }
  return metrics;
}
