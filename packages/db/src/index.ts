export * from './operation-types.js';
export type * from './schema.js';
export { LOCATION_TYPES } from './schema.js';
export type { OperationSnapshot, StallState } from './snapshot.js';
export type { ErrorInfo, EventDetails, NotificationInput, TransitionOptions } from './events.js';
export {
  assertSchemaName,
  createDatabase,
  serverBounds,
  type CcatDatabase,
  type DatabaseOptions,
  type PoolLike,
} from './pool.js';
export { checkOperationTypeKeys, schemaNameSchema } from './config.js';
export {
  appliedMigrations,
  assertSearchPath,
  MIGRATE_LOCK_TIMEOUT_MS,
  migrateLockKey,
  migrateToLatest,
  migrateWhenReachable,
  migrationStatus,
  type MigrateResult,
  type MigrationStatus,
} from './migrate.js';
export {
  claim,
  complete,
  dispatch,
  dispatchDue,
  lockInProgress,
  tryLockInProgress,
  manualRetry,
  markFailed,
  readOperation,
  recoverStalled,
  recoverSharedStall,
  release,
  resetForRetry,
  touchScheduled,
  updateProgress,
  type CompleteOptions,
  type FencedWriteResult,
  type TransitionResult,
} from './transitions.js';
export type { CompletionRecord } from './internal/state-machine.js';
export {
  countsByTypeAndStatus,
  databaseNow,
  duePending,
  FAILURE_EVENTS,
  failuresByErrorCode,
  nextStaleInProgressInMs,
  staleInProgress,
  staleScheduled,
  type FailureGroup,
  type StatusCount,
} from './queries.js';
export * from './outbox-store.js';
export { recordEvent, recordNotification, type EventOperation } from './records.js';
export { MAX_BODY, MAX_MESSAGE, MAX_NAME, MAX_SUBJECT } from './limits.js';
export {
  TransitionBatcher,
  type Finalize,
  type NextStage,
  type TransitionBatcherOptions,
} from './batcher.js';
export {
  lockInProgressMany,
  recoverStalledMany,
  type LockedInProgress,
  type StallRecoveryRow,
} from './stall-batch.js';
export {
  checkStoredName,
  checkStoredPath,
  MAX_JSON_TEXT,
  NAME_MAX_BYTES,
  PATH_MAX_BYTES,
  storableParameter,
  storablePool,
  storedJson,
  storedText,
  storedTextOrNull,
} from './sanitize.js';
// Defined in @ccat/errors (the logger uses them too); re-exported where they always were.
export { REPLACEMENT_CHARACTER, storableJsonText, storableText } from '@ccat/errors';
export {
  rawFileConflict,
  registerRawFiles,
  sortRawFiles,
  type IngestLocations,
  type RawFileInput,
  type RawFileSorting,
  type RawPackageInput,
  type RegisteredPackage,
} from './ingest.js';
export {
  HOME_LOCATION_COLUMN,
  queueName,
  TYPES_AT_LOCATION,
  waitingByQueue,
  waitingInQueues,
  type WaitingQueue,
  type WaitingRow,
} from './queues.js';
export { notifiedWithin } from './notified.js';
export { locationRoot, readOutputLocations, type OutputLocation } from './output-locations.js';
export { currentStates, type CurrentState } from './current-states.js';
