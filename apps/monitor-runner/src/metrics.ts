// Prometheus metrics of the monitor-runner (DESIGN §10).
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
}

export function createMonitorMetrics(): MonitorMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ccat_monitor_' });
  const r = { registers: [registry] };
  return {
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
  };
}
