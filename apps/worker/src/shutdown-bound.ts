// How long a worker's graceful shutdown may take, from the first SIGTERM to the process's exit.
import type { StopBounds } from '@ccat/service';
import type { WorkerConfig } from './config.js';

/**
 * Margin past `graceMs + closeTimeoutMs` for the steps around them (pausing and closing the BullMQ
 * workers, each bounded by min(5 s, closeTimeoutMs), the heartbeat, the health key, the HTTP server).
 */
const WORKER_SHUTDOWN_MARGIN_MS = 2_000;

/**
 * The worker's stop bounds, in ms from the first signal: the whole shutdown ends by `limitMs` =
 * `shutdown.graceMs + shutdown.closeTimeoutMs + WORKER_SHUTDOWN_MARGIN_MS` (exit 1 there, the last
 * resort); the app's steps are abandoned and the connections dropped a second before (exit 0). At the
 * defaults (4 s + 2 s + 2 s) that is 8 s: under Docker's 10 s stop timeout and well under Kubernetes'
 * 30 s terminationGracePeriodSeconds, so the SIGKILL never lands first. A deployment that raises
 * graceMs raises its platform's grace above this bound (docs/deploy.md).
 */
export function workerStopBounds(shutdown: WorkerConfig['shutdown']): StopBounds {
  const limitMs = shutdown.graceMs + shutdown.closeTimeoutMs + WORKER_SHUTDOWN_MARGIN_MS;
  return {
    limitMs,
    appMs: limitMs - 1000,
    connectionsMs: limitMs - 1000,
    closeTimeoutMs: shutdown.closeTimeoutMs,
  };
}
