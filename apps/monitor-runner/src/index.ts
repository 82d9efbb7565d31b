// @ccat/monitor-runner as a library, for the benchmarks and services that embed a monitor.
export { createMonitorRunner, type MonitorRunner, type MonitorRunnerDeps } from './runner.js';
export { Monitor, monitorLeaseKey, type PassReport } from './monitor.js';
export type { MonitorDeps, PassCounts } from './pass/types.js';
export {
  loadMonitorConfig,
  monitorConfigSchema,
  MONITOR_ENV_ALIASES,
  MONITOR_SECRET_FILES,
  type MonitorConfig,
  type MonitorConfigInput,
} from './config.js';
export { monitorStopBounds } from './shutdown-bound.js';
export { createMonitorMetrics, type MonitorMetrics } from './metrics.js';
