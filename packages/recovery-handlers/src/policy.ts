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
  'retryable' | 'non_retryable' | 'retries_exhausted' | 'stalled' | 'stalled_too_often';

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
      /** The code the row is failed with: the error's own, or STALLED_TOO_OFTEN. */
      readonly code: string;
      readonly maxRetries: number;
      readonly reason: 'non_retryable' | 'retries_exhausted' | 'stalled_too_often';
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

/** Decides what a stall (dead, frozen or hung task) does: stalls count toward the same limit. */
export function decideStall(args: {
  readonly config: RecoveryPolicyConfig;
  readonly operationType: string;
  readonly row: RowRetryState;
  readonly random?: () => number;
}): FailureDecision {
  const { config, operationType, row } = args;
  const maxRetries = effectiveMaxRetries(config, operationType, row);
  if (row.retryCount >= maxRetries)
    return { kind: 'fail', code: 'STALLED_TOO_OFTEN', maxRetries, reason: 'stalled_too_often' };
  return {
    kind: 'retry',
    delayMs: backoffDelayMs(config, operationType, row.retryCount, args.random),
    retryNumber: row.retryCount + 1,
    maxRetries,
    reason: 'stalled',
  };
}
