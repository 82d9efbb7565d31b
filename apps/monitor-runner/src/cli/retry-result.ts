// What `retry` reports per operation; the JSON document's `results` entries.
import type { OperationStatus, OperationType } from '@ccat/db';
import type { FailedOperation } from './failed-operations.js';

/**
 * `retried`: reset to pending. `refused`: not failed, left alone. `not_found`: no such operation.
 * `changed`: it was failed when read but changed before the fenced reset, which then changed nothing.
 */
export type RetryOutcome = 'retried' | 'refused' | 'not_found' | 'changed';

export interface RetryState {
  readonly status: OperationStatus;
  readonly attempt: number;
  readonly retryCount: number;
  readonly lastErrorCode: string | null;
}

export interface RetryResult {
  readonly type: OperationType;
  readonly id: string;
  readonly outcome: RetryOutcome;
  readonly before: RetryState | null;
  readonly after: RetryState | null;
  /** The manual_retry event written with the reset. */
  readonly eventId: string | null;
}

/** The `retry --json` document: the same keys in both forms (null where a form has no such thing). */
export interface RetryDocument {
  readonly command: 'retry';
  readonly mode: 'single' | 'bulk';
  /** True when nothing was attempted: a bulk run without --yes. */
  readonly dryRun: boolean;
  readonly type: OperationType;
  /** The single form's id. */
  readonly id: string | null;
  /** The bulk form's filters. */
  readonly code: string | null;
  readonly since: string | null;
  /** Failed operations the request matched (single form: 1 when the operation is failed, else 0). */
  readonly matched: number;
  /** What a dry run would reset (at most --limit of `matched`). */
  readonly wouldRetry: readonly FailedOperation[];
  readonly results: readonly RetryResult[];
}
