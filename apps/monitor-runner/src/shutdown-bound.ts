// How long a monitor's graceful shutdown may take, from the first SIGTERM to the process's exit.
import type { StopBounds } from '@ccat/service';
import type { MonitorConfig } from './config.js';

/**
 * The monitor's stop bounds, in ms from the first signal: SIGTERM ends within `shutdown.timeoutMs`,
 * exit 0, whatever the servers do. The runner's steps (the monitor bounds its own pass at 5/6 of the
 * bound at most) get until 85 % of it, closing the connections until 93 %. Every abandoned step is
 * idempotent work the next process redoes (the pass's lease lapses, an open transaction rolls back on
 * disconnect, a relay send's outbox lease lapses). At the default 8 s this is under Docker's 10 s
 * stop timeout and well under Kubernetes' 30 s terminationGracePeriodSeconds.
 */
export function monitorStopBounds({ timeoutMs }: MonitorConfig['shutdown']): StopBounds {
  return {
    limitMs: timeoutMs,
    appMs: timeoutMs * 0.85,
    connectionsMs: timeoutMs * 0.93,
    closeTimeoutMs: timeoutMs,
  };
}
