// Prometheus metrics of a worker process (DESIGN §10). prom-client: the standard registry and text
// format, histograms included.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WorkerMetrics {
  readonly registry: Registry;
  readonly jobs: Counter<'operation_type' | 'outcome'>;
  readonly failures: Counter<'operation_type' | 'error_code'>;
  readonly retriesScheduled: Counter<'operation_type'>;
  readonly permanentFailures: Counter<'operation_type'>;
  readonly leaseLost: Counter<'operation_type'>;
  readonly inFlight: Gauge<'operation_type'>;
  readonly duration: Histogram<'operation_type' | 'outcome'>;
  readonly bytes: Counter<'operation_type'>;
  readonly heartbeatRtt: Histogram;
  readonly heartbeatFailures: Counter;
  readonly dispatched: Counter<'operation_type'>;
  readonly redispatched: Counter<'operation_type'>;
  readonly malformedJobs: Counter;
}

export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ccat_worker_' });
  const r = { registers: [registry] };
  const types = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['operation_type'] as const, ...r });
  return {
    registry,
    jobs: new Counter({
      name: 'ccat_jobs_total',
      help: 'Jobs handled, by outcome',
      labelNames: ['operation_type', 'outcome'] as const,
      ...r,
    }),
    failures: new Counter({
      name: 'ccat_failures_total',
      help: 'Operation failures by error code',
      labelNames: ['operation_type', 'error_code'] as const,
      ...r,
    }),
    retriesScheduled: types('ccat_retries_scheduled_total', 'Failures that were reset for retry'),
    permanentFailures: types('ccat_permanent_failures_total', 'Failures that marked the operation failed'),
    leaseLost: types(
      'ccat_lease_lost_total',
      'Attempts that found they were recovered elsewhere and stopped',
    ),
    inFlight: new Gauge({
      name: 'ccat_in_flight_tasks',
      help: 'Tasks running in this process',
      labelNames: ['operation_type'] as const,
      ...r,
    }),
    duration: new Histogram({
      name: 'ccat_operation_duration_seconds',
      help: 'Run time of operations',
      labelNames: ['operation_type', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600],
      ...r,
    }),
    bytes: types('ccat_operation_bytes_total', 'Bytes moved by completed operations'),
    heartbeatRtt: new Histogram({
      name: 'ccat_heartbeat_rtt_seconds',
      help: 'Round-trip time of one heartbeat for all tasks of this process',
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      ...r,
    }),
    heartbeatFailures: new Counter({
      name: 'ccat_heartbeat_failures_total',
      help: 'Heartbeats that failed (Redis unreachable)',
      ...r,
    }),
    dispatched: types('ccat_dispatched_total', 'Pending operations turned into jobs'),
    redispatched: types(
      'ccat_redispatched_total',
      'Scheduled operations whose job vanished and was re-created',
    ),
    malformedJobs: new Counter({
      name: 'ccat_malformed_jobs_total',
      help: 'Jobs refused because their payload was invalid',
      ...r,
    }),
  };
}
