export type {
  CleanupContext,
  CleanupResult,
  Executor,
  OperationOutput,
  RecoveryHandler,
  TaskRef,
} from './handler.js';
export {
  backoffDelayMs,
  decideFailure,
  decideStall,
  effectiveMaxRetries,
  recoveryPolicySchema,
  type DecisionReason,
  type FailureDecision,
  type RowStallState,
  type StallDecision,
  type RecoveryPolicyConfig,
  type RecoveryPolicyInput,
  type RowRetryState,
} from './policy.js';
export { partialPath, removePartials, RESERVED_MARKER, TOMB_SUFFIX, tombPath } from './partial-files.js';
export {
  containedPath,
  locationPath,
  MAX_FINAL_NAME_BYTES,
  resolveOperationOutputs,
  unpackDirectory,
  type ContainedPath,
} from './outputs.js';
export {
  hashFile,
  hashingTap,
  openRegularFile,
  regularFileSize,
  regularFileStream,
  type HashResult,
} from './regular-files.js';
export { createTableHandler } from './table-handler.js';
export { builtinHandlers, createHandlerRegistry, type HandlerRegistry } from './registry.js';
export {
  buildNotification,
  dedupKey,
  type NotificationFacts,
  type RecoveryEventKind,
} from './notifications.js';
export { applyFailure, type FailureOutcome, type RecoveryDeps } from './apply.js';
export {
  applyStallRecoveries,
  applyStallRecovery,
  type StallOutcome,
  type StallReason,
  type StallTask,
} from './stall.js';
