import type { OperationStatus, OperationType } from './operation-types.js';

/** An operation's state as a transition left it (or as read). */
export interface OperationSnapshot {
  readonly type: OperationType;
  readonly id: string;
  readonly status: OperationStatus;
  readonly attempt: number;
  readonly retryCount: number;
  /** Liveness stalls (process died or froze) while sharing its process; not retries (DESIGN §4, issue 13.4). */
  readonly stallCount: number;
  /** Runs alone in a worker process (its location's isolation queue) from now on. */
  readonly runAlone: boolean;
  readonly maxRetries: number | null;
  readonly nextAttemptAt: Date;
  readonly scheduledAt: Date | null;
  readonly claimedBy: string | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly lastSeenAt: Date | null;
  readonly progressBytes: string;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
}

/**
 * The part of an operation's state that stall recovery reads and reports (lockInProgressMany,
 * recoverStalledMany): the counters and the claim, without the timestamps and texts of a full
 * snapshot, so a chunk of thousands of rows is read and returned cheaply. Every OperationSnapshot
 * is one.
 */
export type StallState = Pick<
  OperationSnapshot,
  | 'type'
  | 'id'
  | 'status'
  | 'attempt'
  | 'retryCount'
  | 'stallCount'
  | 'runAlone'
  | 'maxRetries'
  | 'claimedBy'
  | 'lastErrorCode'
>;
