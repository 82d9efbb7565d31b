export { HeartbeatEmitter } from './emitter.js';
export type {
  BeatReport,
  EmitterStats,
  HeartbeatEmitterOptions,
  LostReason,
  LostTask,
  TrackedTask,
  TrackOptions,
} from './emitter-types.js';
export { HeartbeatScanner, type HeartbeatScannerOptions } from './scanner.js';
export type {
  ExpiredScan,
  HeartbeatCounts,
  InFlightList,
  NextDeadline,
  PageOptions,
  RemoveResult,
  ScannerStats,
  StalledScan,
} from './scan-results.js';
export { ServiceHealthReporter, type ServiceHealthReporterOptions } from './health-reporter.js';
export {
  ServiceHealthReader,
  type ServiceHealth,
  type ServiceHealthListing,
  type ServiceHealthReaderOptions,
  type ServiceStatus,
} from './health-reader.js';
export {
  healthOptionsSchema,
  heartbeatOptionsSchema,
  keyspaceOptionsSchema,
  scannerOptionsSchema,
  type HealthOptions,
  type HeartbeatOptions,
  type KeyspaceOptions,
  type ScannerOptions,
} from './options.js';
export { releaseLease } from './lease.js';
export { heartbeatKeys, type HeartbeatKeys } from './keys.js';
export { assertTaskId, isValidTaskId, TASK_ID_MAX_LENGTH, TASK_ID_PATTERN } from './task-id.js';
export {
  HeartbeatClosedError,
  HeartbeatLostError,
  InvalidTaskIdError,
  ServiceNameInUseError,
} from './errors.js';
export type { RedisClient } from './redis-client.js';
export type {
  CorruptEntry,
  CorruptReason,
  ExpiredTask,
  InFlightTask,
  ProgressInfo,
  ProgressValue,
  QuarantinedEntry,
  StalledTask,
  TaskDetails,
} from './task-info.js';
