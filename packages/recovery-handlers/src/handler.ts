import type {
  Database,
  ErrorInfo,
  OperationType,
  OperationSnapshot,
  TransitionOptions,
  TransitionResult,
} from '@ccat/db';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/** One attempt of one operation; `type` is a string so other services can register their own. */
export interface TaskRef {
  readonly type: string;
  readonly id: string;
  readonly attempt: number;
}

/** The database handle a handler works in: the caller's transaction (or a plain Kysely). */
export type Executor = Kysely<Database>;

/** Where an operation writes, so its partial output can be found and removed. */
export interface OperationOutput {
  /** Absolute path of the final file or directory. */
  readonly path: string;
  readonly kind: 'file' | 'directory';
}

export interface CleanupContext {
  readonly db: Executor;
  readonly ref: TaskRef;
  readonly logger?: Logger;
}

export interface CleanupResult {
  /** Paths removed (temporary files, half-written folders of attempts <= ref.attempt). */
  readonly removed: readonly string[];
}

/**
 * What the recovery machinery needs of one operation type. Every state-changing method runs in the
 * caller's transaction and is fenced on `ref.attempt`: it answers `applied: false` when the row
 * moved on, and then writes nothing. It may write the event and notification in `options` itself
 * (answering their ids, as the built-ins do in the same statement); whatever it does not write, the
 * caller writes in the same transaction.
 */
export interface RecoveryHandler {
  readonly operationType: string;
  /**
   * Set by the built-in table handlers only: this type's state is its @ccat/db table and nothing
   * else, so its stalls may be recovered in batches (applyStallRecoveries) instead of one by one.
   */
  readonly table?: OperationType;
  /** Locks attempt k's row while it is in_progress (SELECT … FOR UPDATE); undefined when it moved on. */
  lockInProgress(trx: Executor, ref: TaskRef): Promise<OperationSnapshot | undefined>;
  /**
   * As lockInProgress, but never waits for a row lock (SELECT … FOR UPDATE SKIP LOCKED): `'locked'`
   * when the attempt is still in progress but another transaction holds its row. The monitor uses it
   * when present (and retries a locked row later); without it the monitor waits on lockInProgress,
   * bounded by the server's lock_timeout.
   */
  tryLockInProgress?(trx: Executor, ref: TaskRef): Promise<OperationSnapshot | 'locked' | undefined>;
  /** in_progress(k) → pending(k+1), retry counted, due after `delayMs`. */
  resetStateOnFailure(
    trx: Executor,
    ref: TaskRef,
    args: { delayMs: number; error: ErrorInfo },
    options: TransitionOptions,
  ): Promise<TransitionResult>;
  /** in_progress(k) → failed. */
  markPermanentFailure(
    trx: Executor,
    ref: TaskRef,
    args: { error: ErrorInfo },
    options: TransitionOptions,
  ): Promise<TransitionResult>;
  /** in_progress(k) → pending(k+1) after a stall, retry counted. */
  recoverStalled(
    trx: Executor,
    ref: TaskRef,
    args: { delayMs: number; error: ErrorInfo },
    options: TransitionOptions,
  ): Promise<TransitionResult>;
  /**
   * in_progress(k) → pending(k+1) after its process died while it shared it with other tasks:
   * stall_count+1, no retry counted, run_alone := `runAlone` (issue 13.4). A handler without it has
   * such stalls recovered by `recoverStalled` (counted as retries, the rule before 13.4).
   */
  readonly recoverSharedStall?: (
    trx: Executor,
    ref: TaskRef,
    args: { delayMs: number; error: ErrorInfo; runAlone: boolean },
    options: TransitionOptions,
  ) => Promise<TransitionResult>;
  /**
   * Removes what interrupted runs of this operation left behind: temporary files and half-written
   * folders of attempts up to `ref.attempt` (never a newer attempt's). Idempotent; safe while the
   * row is in any state.
   */
  cleanup(ctx: CleanupContext): Promise<CleanupResult>;
}
