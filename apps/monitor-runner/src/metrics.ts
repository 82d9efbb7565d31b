// Prometheus metrics of the monitor-runner (DESIGN §10).
import { createRequire } from 'node:module';
import { OPERATION_TYPES, type UndeliveredNotifications } from '@ccat/db';
import { NOTIFICATION_LEVELS } from '@ccat/errors';
import { initialiseLabels, registerServiceMetrics } from '@ccat/service';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface MonitorMetrics {
  readonly registry: Registry;
  readonly stallsDetected: Counter<'reason'>;
  readonly recoveries: Counter<'outcome' | 'operation_type'>;
  readonly recoveryFailures: Counter;
  readonly detectionLatency: Histogram<'reason'>;
  readonly passDuration: Histogram;
  readonly passes: Counter<'result'>;
  /** When this process last completed a pass (Unix seconds; 0: never). Alert on `time() - max(...)`. */
  readonly lastPass: Gauge;
  /**
   * 1 when Redis' `maxmemory-policy` is `noeviction` (what BullMQ and the heartbeat set need), 0
   * otherwise, labelled with the policy read (`unknown` when CONFIG GET is refused or failed).
   */
  readonly redisMaxmemoryPolicyOk: Gauge<'policy'>;
  /** Outbox notifications handled by the relay, by result. */
  readonly notifications: Counter<'result'>;
  readonly corruptEntries: Counter<'kind'>;
  readonly staleScheduled: Gauge<'operation_type'>;
  readonly inFlight: Gauge;
  /** Pending and scheduled rows whose queue no live worker serves, by type (pass/unserved-watch.ts); every type from 0. */
  readonly operationsUnserved: Gauge<'operation_type'>;
  /** Undelivered outbox notifications by level and state (pending: being retried or due; failed). */
  readonly notificationsUndelivered: Gauge<'level' | 'state'>;
  /** Age of the oldest undelivered notification by level (0 when there is none). */
  readonly notificationsUndeliveredOldest: Gauge<'level'>;
  /** Reads of the undelivered notifications that failed or missed their deadline, by reason. */
  readonly notificationsUndeliveredReadFailures: Counter<'reason'>;
  /** When the undelivered notifications were last read successfully (Unix seconds; 0: never). */
  readonly notificationsUndeliveredReadAt: Gauge;
}

export interface MonitorMetricsOptions {
  /**
   * Reads the undelivered notifications at scrape time (`countUndeliveredNotifications` from
   * @ccat/db). When it fails or misses `readTimeoutMs` (PostgreSQL unreachable or not answering)
   * the scrape answers anyway with the last values, counts the failure in
   * `ccat_notifications_undelivered_read_failures_total` and leaves
   * `ccat_notifications_undelivered_read_timestamp_seconds` at the last good read. A read still
   * running is not started again. Absent: the gauges stay 0.
   */
  readonly undelivered?: () => Promise<readonly UndeliveredNotifications[]>;
  /** Deadline of one read at scrape time, in ms (default 2000): well inside Prometheus' 10 s scrape timeout. */
  readonly readTimeoutMs?: number;
}

/** Results of `ccat_notifications_total` (the relay's pass report), initialised at 0 at start. */
export const NOTIFICATION_RESULTS = [
  'sent',
  'failed',
  'digested',
  'retried',
  'deferred',
  'exhausted',
  'lease_lost',
] as const;

/** This app's package version, for `ccat_build_info` (read from its package.json, beside src/ and dist/). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * The monitor's registry and metrics, with Node.js process metrics under their standard names and
 * `ccat_build_info`, every series labelled `app="ccat-monitor"`. The series of every known label
 * value (operation types, stall reasons, recovery outcomes, pass results, notification results and
 * levels) exist at 0 from start. The undelivered-notification gauges are read at scrape time
 * through `options.undelivered`, bounded by `readTimeoutMs` (see {@link MonitorMetricsOptions}).
 */
export function createMonitorMetrics(options: MonitorMetricsOptions = {}): MonitorMetrics {
  const registry = new Registry();
  registerServiceMetrics(registry, { app: 'ccat-monitor', version: VERSION });
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
      help: 'Stall recoveries by outcome (stall_recovered, stall_exhausted, not_in_progress; busy: row locked elsewhere, skipped and retried)',
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
    lastPass: new Gauge({
      name: 'ccat_monitor_last_pass_timestamp_seconds',
      help: 'When this monitor last completed a pass (Unix seconds; 0: never). Alert when time() minus the max over replicas grows',
      ...r,
    }),
    redisMaxmemoryPolicyOk: new Gauge({
      name: 'ccat_redis_maxmemory_policy_ok',
      help: 'Whether Redis maxmemory-policy is noeviction (1) or not (0), labelled with the policy read (unknown: CONFIG GET refused)',
      labelNames: ['policy'] as const,
      ...r,
    }),
    notifications: new Counter({
      name: 'ccat_notifications_total',
      help: 'Outbox notifications handled by the relay, by result (sent, failed, digested, retried, deferred, exhausted, lease_lost)',
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
    operationsUnserved: new Gauge({
      name: 'ccat_operations_unserved',
      help: 'Pending and scheduled operations whose queue no live worker serves, by operation type (checked once per loop interval)',
      labelNames: ['operation_type'] as const,
      ...r,
    }),
    notificationsUndelivered: new Gauge({
      name: 'ccat_notifications_undelivered',
      help: 'Outbox notifications not delivered, by level and state (pending: tried without success or due; failed: given up). Alert on level="ERROR"',
      labelNames: ['level', 'state'] as const,
      async collect() {
        const rows = await read();
        if (rows === undefined) return;
        for (const level of NOTIFICATION_LEVELS) {
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
        for (const level of NOTIFICATION_LEVELS) {
          const row = rows.find((x) => x.level === level);
          this.set(
            { level },
            row === undefined ? 0 : Math.max(0, (Date.now() - row.oldestAt.getTime()) / 1000),
          );
        }
      },
      ...r,
    }),
    notificationsUndeliveredReadFailures: new Counter({
      name: 'ccat_notifications_undelivered_read_failures_total',
      help: 'Reads of the undelivered notifications that failed (error) or missed their deadline (timeout); the gauges then keep their last values',
      labelNames: ['reason'] as const,
      // Collected after this scrape's read settled (the registry collects the metrics concurrently).
      async collect() {
        await read();
      },
      ...r,
    }),
    notificationsUndeliveredReadAt: new Gauge({
      name: 'ccat_notifications_undelivered_read_timestamp_seconds',
      help: 'When the undelivered-notification gauges were last read from PostgreSQL (Unix seconds; 0: never). Alert when time() minus this grows',
      async collect() {
        await read();
      },
      ...r,
    }),
  };

  const byType = { operation_type: OPERATION_TYPES };
  const byReason = { reason: ['heartbeat_expired', 'progress_stalled', 'no_heartbeat'] };
  initialiseLabels(metrics.stallsDetected, byReason);
  initialiseLabels(metrics.detectionLatency, byReason);
  initialiseLabels(metrics.recoveries, {
    outcome: ['stall_recovered', 'stall_exhausted', 'not_in_progress', 'busy'],
    ...byType,
  });
  initialiseLabels(metrics.passes, { result: ['ran', 'lease_busy', 'failed'] });
  initialiseLabels(metrics.staleScheduled, byType);
  initialiseLabels(metrics.operationsUnserved, byType);
  initialiseLabels(metrics.notifications, { result: NOTIFICATION_RESULTS });
  initialiseLabels(metrics.notificationsUndeliveredReadFailures, { reason: ['error', 'timeout'] });
  metrics.recoveryFailures.inc(0);
  metrics.inFlight.set(0);
  metrics.lastPass.set(0);

  // One query serves both gauges of a scrape.
  const readTimeoutMs = Math.max(1, options.readTimeoutMs ?? 2000);
  let last: { at: number; rows: Promise<readonly UndeliveredNotifications[] | undefined> } | undefined;
  // The query in flight: a scrape during a hung read waits on it (up to its own deadline), never
  // piles up another connection.
  let running: Promise<readonly UndeliveredNotifications[]> | undefined;
  function read(): Promise<readonly UndeliveredNotifications[] | undefined> {
    const query = options.undelivered;
    if (query === undefined) return Promise.resolve(undefined);
    if (last === undefined || Date.now() - last.at > 1000) {
      if (running === undefined) {
        const started = Promise.resolve().then(query);
        running = started;
        const clear = (): void => {
          if (running === started) running = undefined;
        };
        started.then(clear, clear);
      }
      last = { at: Date.now(), rows: withDeadline(running) };
    }
    return last.rows;
  }
  async function withDeadline(
    query: Promise<readonly UndeliveredNotifications[]>,
  ): Promise<readonly UndeliveredNotifications[] | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), readTimeoutMs);
    });
    try {
      const outcome = await Promise.race([query, deadline]);
      if (outcome === 'timeout') {
        metrics.notificationsUndeliveredReadFailures.inc({ reason: 'timeout' });
        return undefined;
      }
      metrics.notificationsUndeliveredReadAt.set(Date.now() / 1000);
      return outcome;
    } catch {
      metrics.notificationsUndeliveredReadFailures.inc({ reason: 'error' });
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }
  return metrics;
}
