// The failure policy (pure): from the classified error, the row and the configuration, decide
// whether the operation runs again (and after how long) or fails and a human is told.
import { fullJitterDelayMs, renamedKeysError, type CCATDataOperationError } from '@ccat/errors';
import { z } from 'zod';

const backoffSchema = z
  .strictObject(
    {
      baseMs: z
        .number()
        .int()
        .min(0)
        .default(30_000)
        .describe('First retry waits up to this long (full jitter: a uniform draw in [0, base·2^n]).'),
      maxMs: z.number().int().min(0).default(3_600_000).describe('No wait is longer than this.'),
    },
    renamedKeysError({ capMs: 'renamed: use maxMs (same meaning)' }),
  )
  .refine((b) => b.maxMs >= b.baseMs, { message: 'maxMs must be >= baseMs' });

const perTypeSchema = z.strictObject(
  {
    maxRetries: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .optional()
      .describe("This type's retry limit; an error's own limit and a row's max_retries come first."),
    backoffBaseMs: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("This type's backoff base, instead of backoff.baseMs."),
    backoffMaxMs: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("This type's backoff ceiling, instead of backoff.maxMs."),
  },
  renamedKeysError({ backoffCapMs: 'renamed: use backoffMaxMs (same meaning)' }),
);

/** Retry limits and backoff, globally and per operation type. */
export const recoveryPolicySchema = z
  .object({
    defaultMaxRetries: z
      .number()
      .int()
      .min(0)
      .max(1000)
      .default(3)
      .describe('Used when neither the error, the row nor the operation type sets a limit.'),
    backoff: backoffSchema
      .default({ baseMs: 30_000, maxMs: 3_600_000 })
      .describe('Exponential backoff with full jitter between retries; maxMs must be at least baseMs.'),
    operationTypes: z
      .record(z.string(), perTypeSchema)
      .default({})
      .describe('Per operation type: `{ data_transfer: { maxRetries: 5, backoffBaseMs: 60000 } }`.'),
    isolateAfterStalls: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(2)
      .describe(
        'Shared process deaths (no retry used) after which an operation runs alone; a death alone uses a retry (runbook "Innocent neighbours and poison operations"). Read by the monitor.',
      ),
  })
  .strict();

export type RecoveryPolicyConfig = z.output<typeof recoveryPolicySchema>;
export type RecoveryPolicyInput = z.input<typeof recoveryPolicySchema>;

/** The row facts a decision needs. */
export interface RowRetryState {
  readonly retryCount: number;
  /** The row's own override (nullable column). */
  readonly maxRetries: number | null;
}

export type DecisionReason =
  | 'retryable'
  | 'non_retryable'
  | 'retries_exhausted'
  | 'stalled'
  | 'stalled_too_often'
  | 'crashed_alone'
  | 'shared_stall';

export type FailureDecision =
  | {
      readonly kind: 'retry';
      readonly delayMs: number;
      /** 1 for the first retry. */
      readonly retryNumber: number;
      readonly maxRetries: number;
      readonly reason: 'retryable' | 'stalled';
    }
  | {
      readonly kind: 'fail';
      /** The code the row is failed with: the error's own, STALLED_TOO_OFTEN or POISON_OPERATION. */
      readonly code: string;
      readonly maxRetries: number;
      readonly reason: 'non_retryable' | 'retries_exhausted' | 'stalled_too_often' | 'crashed_alone';
    };

/** The row facts a stall decision needs beyond its retries. */
export interface RowStallState extends RowRetryState {
  /** Liveness stalls so far while sharing a process (the column stall_count). */
  readonly stallCount: number;
  /** Whether this attempt ran alone in its process (the column run_alone, fixed for the attempt). */
  readonly runAlone: boolean;
}

/** What a stall does: a retry or a failure (the stall is the operation's own), or a shared stall. */
export type StallDecision =
  | FailureDecision
  | {
      /** Its process died while it shared it: no retry used; stall_count+1. */
      readonly kind: 'shared';
      readonly delayMs: number;
      /** stall_count after this stall. */
      readonly stallCount: number;
      /** Whether it runs alone from now on (stallCount reached `isolateAfterStalls`). */
      readonly runAlone: boolean;
      readonly maxRetries: number;
      readonly reason: 'shared_stall';
    };

/**
 * The retry limit that applies: the error's own, else the row's override, else the operation
 * type's, else the default. (The row's override sits between the error's and the type's: an
 * operator's per-operation choice beats the type's default, but not what the error knows about
 * itself, e.g. that a checksum mismatch is worth two more tries, not ten.)
 */
export function effectiveMaxRetries(
  config: RecoveryPolicyConfig,
  operationType: string,
  row: RowRetryState,
  errorMaxRetries?: number,
): number {
  return (
    errorMaxRetries ??
    row.maxRetries ??
    config.operationTypes[operationType]?.maxRetries ??
    config.defaultMaxRetries
  );
}

/**
 * The delay before the next run of an operation that has been retried `retryCount` times: the one
 * full-jitter backoff (@ccat/errors `fullJitterDelayMs`, uniform in [0, min(max, base·2^retryCount)])
 * with this operation type's base and ceiling.
 */
export function backoffDelayMs(
  config: RecoveryPolicyConfig,
  operationType: string,
  retryCount: number,
  random: () => number = Math.random,
): number {
  const t = config.operationTypes[operationType];
  const baseMs = t?.backoffBaseMs ?? config.backoff.baseMs;
  const maxMs = Math.max(baseMs, t?.backoffMaxMs ?? config.backoff.maxMs);
  return fullJitterDelayMs(retryCount + 1, { baseMs, maxMs }, random);
}

/** Decides what a thrown (already classified) error does to the operation. */
export function decideFailure(args: {
  readonly config: RecoveryPolicyConfig;
  readonly operationType: string;
  readonly row: RowRetryState;
  readonly error: Pick<CCATDataOperationError, 'code' | 'retryable' | 'maxRetries'>;
  readonly random?: () => number;
}): FailureDecision {
  const { config, operationType, row, error } = args;
  const maxRetries = effectiveMaxRetries(config, operationType, row, error.maxRetries);
  if (!error.retryable) return { kind: 'fail', code: error.code, maxRetries, reason: 'non_retryable' };
  if (row.retryCount >= maxRetries)
    return { kind: 'fail', code: error.code, maxRetries, reason: 'retries_exhausted' };
  return {
    kind: 'retry',
    delayMs: backoffDelayMs(config, operationType, row.retryCount, args.random),
    retryNumber: row.retryCount + 1,
    maxRetries,
    reason: 'retryable',
  };
}

/**
 * Decides what a stall does (issue 13.4; the rule is in docs/runbook.md, "Innocent neighbours and
 * poison operations"). `processLost` is a liveness stall (no beat from the process: it died, froze
 * or was cut off; or no heartbeat and no sign of life in the database), as opposed to a progress
 * stall (the process beats, this task's progress stopped).
 * - A progress stall is the task's own: it uses a retry; when none is left, fail STALLED_TOO_OFTEN.
 * - A liveness stall of an attempt that ran alone in its process is its own too: it uses a retry;
 *   when none is left, fail POISON_OPERATION (it took down every process that ran it alone).
 * - A liveness stall of an attempt that shared its process says nothing about whose fault it was:
 *   `shared` — no retry used, stall_count+1, and from `isolateAfterStalls` such stalls on it runs
 *   alone. So an innocent operation never fails from its neighbours' crashes, and a poison one
 *   fails after at most `isolateAfterStalls` + its retry limit + 1 deaths.
 * Pure; `random` draws the backoff's jitter.
 */
export function decideStall(args: {
  readonly config: RecoveryPolicyConfig;
  readonly operationType: string;
  readonly row: RowStallState;
  readonly processLost: boolean;
  readonly random?: () => number;
}): StallDecision {
  const { config, operationType, row } = args;
  const maxRetries = effectiveMaxRetries(config, operationType, row);
  if (args.processLost && !row.runAlone) {
    const stallCount = row.stallCount + 1;
    return {
      kind: 'shared',
      delayMs: backoffDelayMs(config, operationType, row.stallCount, args.random),
      stallCount,
      runAlone: stallCount >= config.isolateAfterStalls,
      maxRetries,
      reason: 'shared_stall',
    };
  }
  if (row.retryCount >= maxRetries)
    return args.processLost
      ? { kind: 'fail', code: 'POISON_OPERATION', maxRetries, reason: 'crashed_alone' }
      : { kind: 'fail', code: 'STALLED_TOO_OFTEN', maxRetries, reason: 'stalled_too_often' };
  return {
    kind: 'retry',
    delayMs: backoffDelayMs(config, operationType, row.retryCount, args.random),
    retryNumber: row.retryCount + 1,
    maxRetries,
    reason: 'stalled',
  };
}
