// The admin queries: plain typed data for the ccat-recovery CLI and the web dashboard alike. No
// rendering, no exit codes, no process: callers bring their connections.
export {
  readFailures,
  type FailureExample,
  type FailureGroupRow,
  type Failures,
  type FailuresFilter,
} from './failures.js';
export {
  buildReport,
  DEFINITIONS,
  ratio,
  recoveryReport,
  type RecoveryReport,
  type TypeReport,
} from './report.js';
export { readReport, type ReportData, type TypeFigures } from './report-queries.js';
export {
  listFailedOperations,
  retryFailedRow,
  retryOperation,
  type FailedOperation,
  type FailedSelection,
  type RetryDeps,
  type RetryOutcome,
  type RetryResult,
  type RetryState,
} from './retry.js';
export {
  isConnectionFailure,
  unavailable,
  type ServiceName,
  type Source,
  type Unavailable,
} from './sources.js';
export {
  readStatus,
  type InFlightRow,
  type StalledRow,
  type Status,
  type StatusCounts,
  type TaskRow,
} from './status.js';
