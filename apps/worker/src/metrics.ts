// Prometheus metrics of a worker process (DESIGN §10). prom-client: the standard registry and text
// format, histograms included.

import { createRequire } from 'node:module';
import { OPERATION_TYPES } from '@ccat/db';
import { initialiseLabels, registerServiceMetrics } from '@ccat/service';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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

/** The outcomes of `ccat_jobs_total` (TaskOutcome in task-runner.ts), initialised at 0 at start. */
const JOB_OUTCOMES = [
  'completed',
  'retry_scheduled',
  'permanent_failure',
  'lease_lost',
  'released',
  'claim_refused',
  'recovery_deferred',
] as const;

/** This app's package version, for `ccat_build_info` (read from its package.json, beside src/ and dist/). */
const VERSION = (createRequire(import.meta.url)('../package.json') as { version: string }).version;

/**
 * The worker's registry: its own metrics, Node.js process metrics under their standard names and
 * `ccat_build_info`, every series labelled `app="ccat-worker"`. Every per-operation-type series
 * (and every job outcome) exists at 0 from start; `ccat_failures_total` gets a series per error
 * code at its first failure (the set of codes is open: other CCAT services bring their own).
 */
export function createWorkerMetrics(): WorkerMetrics {
  const registry = new Registry();
  registerServiceMetrics(registry, { app: 'ccat-worker', version: VERSION });
  const r = { registers: [registry] };
  const types = (name: string, help: string) =>
    new Counter({ name, help, labelNames: ['operation_type'] as const, ...r });
  const metrics: WorkerMetrics = {
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
  const byType = { operation_type: OPERATION_TYPES };
  initialiseLabels(metrics.jobs, { ...byType, outcome: JOB_OUTCOMES });
  initialiseLabels(metrics.duration, { ...byType, outcome: JOB_OUTCOMES });
  for (const m of [
    metrics.retriesScheduled,
    metrics.permanentFailures,
    metrics.leaseLost,
    metrics.inFlight,
    metrics.bytes,
    metrics.dispatched,
    metrics.redispatched,
  ])
    initialiseLabels(m, byType);
  metrics.heartbeatFailures.inc(0);
  metrics.malformedJobs.inc(0);
  return metrics;
}
