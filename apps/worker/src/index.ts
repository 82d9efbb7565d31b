// @ccat/worker as a library: what the benchmarks, the repo checks and the docs generator import (the
// program is dist/main.js). Only names something imports are exported here.
export {
  loadWorkerConfig,
  workerConfigSchema,
  ENV_ALIASES,
  WORKER_SECRET_FILES,
  type WorkerConfigInput,
} from './config.js';
export { workerStopBounds } from './shutdown-bound.js';
export { Dispatcher } from './dispatcher.js';
export { TaskRunner } from './task-runner.js';
export type { Operation } from './operations/types.js';
export { createFaultInjector } from './faults.js';
export { createWorkerMetrics } from './metrics.js';
export { NEXT_STAGE } from './pipeline.js';
export { createLocalCopyTransport } from './transports.js';
