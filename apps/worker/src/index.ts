// @ccat/worker as a library, for the benchmarks and services that embed a worker.
export { createWorker, type WorkerApp, type WorkerDeps } from './worker.js';
export {
  loadWorkerConfig,
  timeoutsFor,
  workerConfigSchema,
  ENV_ALIASES,
  type WorkerConfig,
  type WorkerConfigInput,
} from './config.js';
export {
  Dispatcher,
  JOB_OPTIONS,
  type DispatcherDeps,
  type DispatcherOptions,
  type PassResult,
} from './dispatcher.js';
export { TaskRunner, type TaskOutcome, type TaskRunnerDeps } from './task-runner.js';
export { OPERATIONS } from './operations/index.js';
export type { Operation, OperationContext, OperationResult } from './operations/types.js';
export {
  createFaultInjector,
  faultHits,
  faultsSchema,
  FAULT_KINDS,
  type FaultInjector,
  type FaultKind,
  type FaultsConfig,
} from './faults.js';
export { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
export {
  jobId,
  jobPayloadSchema,
  queueName,
  queuesFor,
  servedQueues,
  HOME_LOCATION_COLUMN,
  TYPES_AT_LOCATION,
  type JobPayload,
} from './queues.js';
export { bundleRawPackages, NEXT_STAGE, type PipelineOptions } from './pipeline.js';
export {
  createCommandTransport,
  createLocalCopyTransport,
  type CommandTransportOptions,
  type Transport,
} from './transports.js';
