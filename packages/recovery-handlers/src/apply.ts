// applyFailure / applyStallRecovery: the decision, the state change, its operation_events row and
// its outbox notification in ONE transaction, then one structured log line. A row that moved on
// (the attempt is no longer in progress) is left alone.
import {
  MAX_MESSAGE,
  recordEvent,
  recordNotification,
  type Database,
  type ErrorInfo,
  type EventDetails,
  type NotificationInput,
  type OperationSnapshot,
} from '@ccat/db';
import { classifyError, serializeError, type CCATDataOperationError } from '@ccat/errors';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Executor, TaskRef } from './handler.js';
import { buildNotification, type RecoveryEventKind } from './notifications.js';
import { decideFailure, decideStall, type FailureDecision, type RecoveryPolicyConfig } from './policy.js';
import type { HandlerRegistry } from './registry.js';

/** What applyFailure and applyStallRecovery use: `db` must be a root Kysely (each opens its own transaction). */
export interface RecoveryDeps {
  readonly db: Kysely<Database>;
  readonly registry: HandlerRegistry;
  readonly policy: RecoveryPolicyConfig;
  readonly logger: Logger;
  /** For tests: the jitter source. */
  readonly random?: () => number;
}

/** What applyFailure decided and applied (or `lease_lost`: nothing applied). */
export type FailureOutcome =
  | {
      readonly kind: 'retry_scheduled';
      readonly error: CCATDataOperationError;
      readonly delayMs: number;
      readonly operation: OperationSnapshot;
    }
  | {
      readonly kind: 'permanent_failure';
      readonly error: CCATDataOperationError;
      readonly reason: string;
      readonly operation: OperationSnapshot;
    }
  /** The attempt was no longer in progress: someone else (the monitor, an admin) moved it on. Nothing changed. */
  | { readonly kind: 'lease_lost'; readonly error: CCATDataOperationError };

/** Why the monitor holds an attempt stalled; recorded in the event's context and the notification. */
export type StallReason = 'heartbeat_expired' | 'progress_stalled' | 'no_heartbeat';

/** What applyStallRecovery applied (or `not_in_progress`: nothing). */
export type StallOutcome =
  | { readonly kind: 'stall_recovered'; readonly delayMs: number; readonly operation: OperationSnapshot }
  | { readonly kind: 'stall_exhausted'; readonly operation: OperationSnapshot }
  /** The attempt had already finished or moved on: nothing to recover. */
  | { readonly kind: 'not_in_progress' };

function errorInfo(e: CCATDataOperationError): ErrorInfo {
  return { code: e.code, message: e.message, errorClass: e.name, retryable: e.retryable };
}

/**
 * Writes the event and the notification a handler did not write itself (the built-in handlers write
 * them in the same statement as the state change; a custom handler may leave them to us). Same
 * transaction either way.
 */
async function ensureRecorded(
  trx: Executor,
  ref: TaskRef,
  result: { eventId?: string; notificationId?: string },
  records: { event: EventDetails & { event: RecoveryEventKind }; notification: NotificationInput },
  error: ErrorInfo,
): Promise<void> {
  if (result.eventId === undefined) await recordEvent(trx, ref, records.event, error);
  if (result.notificationId === undefined) await recordNotification(trx, records.notification, ref);
}

/**
 * Handles a task that threw: classifies the error, decides (retry with backoff, or fail), and
 * applies the decision with its event and notification in one transaction. Fenced on the attempt:
 * when the row moved on, records `lease_lost` and changes nothing. Throws only when the database
 * cannot be reached (the row then stays in progress and the monitor recovers it later).
 */
export async function applyFailure(
  deps: RecoveryDeps,
  args: { readonly ref: TaskRef; readonly error: unknown; readonly workerId?: string },
): Promise<FailureOutcome> {
  const { ref, workerId } = args;
  const handler = deps.registry.get(ref.type);
  const error = classifyError(args.error);
  const log = deps.logger.child({ operationType: ref.type, operationId: ref.id, attempt: ref.attempt });
  let decision: FailureDecision | undefined;
  const outcome = await deps.db.transaction().execute(async (trx): Promise<FailureOutcome> => {
    const leaseLost = async (): Promise<FailureOutcome> => {
      const context = { note: 'failure reported after the attempt moved on; nothing changed' };
      const event = { event: 'lease_lost', context, ...(workerId !== undefined && { workerId }) };
      await recordEvent(trx, ref, event, errorInfo(error));
      return { kind: 'lease_lost', error };
    };
    const row = await handler.lockInProgress(trx, ref);
    if (row === undefined) return leaseLost();
    decision = decideFailure({
      config: deps.policy,
      operationType: ref.type,
      row,
      error,
      ...(deps.random !== undefined && { random: deps.random }),
    });
    const kind: RecoveryEventKind = decision.kind === 'retry' ? 'retry_scheduled' : 'permanent_failure';
    const retryCount = decision.kind === 'retry' ? decision.retryNumber : row.retryCount;
    const eventContext = {
      reason: decision.reason,
      maxRetries: decision.maxRetries,
      retryCount,
      ...(decision.kind === 'retry' && { delayMs: decision.delayMs }),
      error: serializeError(error, { includeStack: false, maxMessageLength: MAX_MESSAGE }),
    };
    const notification = buildNotification({
      kind,
      ref,
      errorCode: error.code,
      errorClass: error.name,
      errorMessage: error.message,
      retryCount,
      maxRetries: decision.maxRetries,
      ...(workerId !== undefined && { workerId }),
      ...(decision.kind === 'retry' && { delayMs: decision.delayMs }),
    });
    const options = {
      event: { event: kind, ...(workerId !== undefined && { workerId }), context: eventContext },
      notification,
    };
    const result =
      decision.kind === 'retry'
        ? await handler.resetStateOnFailure(
            trx,
            ref,
            { delayMs: decision.delayMs, error: errorInfo(error) },
            options,
          )
        : await handler.markPermanentFailure(trx, ref, { error: errorInfo(error) }, options);
    // The row is locked: the fenced write cannot miss. If it does, something else is writing without the lock.
    if (!result.applied || result.operation === undefined) return leaseLost();
    await ensureRecorded(trx, ref, result, options, errorInfo(error));
    return decision.kind === 'retry'
      ? { kind: 'retry_scheduled', error, delayMs: decision.delayMs, operation: result.operation }
      : { kind: 'permanent_failure', error, reason: decision.reason, operation: result.operation };
  });
  const fields = {
    errorCode: error.code,
    errorClass: error.name,
    retryable: error.retryable,
    decision: outcome.kind,
    workerId,
  };
  const counts =
    outcome.kind === 'lease_lost'
      ? {}
      : { retryCount: outcome.operation.retryCount, maxRetries: decision?.maxRetries };
  const logged = { ...fields, ...counts, err: error.message };
  switch (outcome.kind) {
    case 'retry_scheduled':
      log.warn({ ...logged, delayMs: outcome.delayMs }, 'operation failed; retry scheduled');
      break;
    case 'permanent_failure':
      log.error({ ...logged, reason: outcome.reason }, 'operation failed permanently');
      break;
    case 'lease_lost':
      log.warn(logged, 'lease_lost: the attempt moved on; failure not applied');
      break;
  }
  return outcome;
}

/**
 * Recovers a stalled attempt (dead, frozen or hung): back to pending with backoff, or failed with
 * STALLED_TOO_OFTEN when stalls used up the retries; event and notification in the same
 * transaction. An attempt that is no longer in progress is left alone (`not_in_progress`).
 */
export async function applyStallRecovery(
  deps: RecoveryDeps,
  args: {
    readonly ref: TaskRef;
    readonly reason: StallReason;
    readonly detectedBy?: string;
    readonly details?: Readonly<Record<string, unknown>>;
  },
): Promise<StallOutcome> {
  const { ref, reason } = args;
  const handler = deps.registry.get(ref.type);
  const log = deps.logger.child({ operationType: ref.type, operationId: ref.id, attempt: ref.attempt });
  const describeReason: Record<StallReason, string> = {
    heartbeat_expired: 'no heartbeat before its deadline (process dead or frozen)',
    progress_stalled: 'heartbeats continued but progress stopped (hung I/O)',
    no_heartbeat: 'in progress with no heartbeat and no sign of life in the database',
  };
  const outcome = await deps.db.transaction().execute(async (trx): Promise<StallOutcome> => {
    const row = await handler.lockInProgress(trx, ref);
    if (row === undefined) return { kind: 'not_in_progress' };
    const decision = decideStall({
      config: deps.policy,
      operationType: ref.type,
      row,
      ...(deps.random !== undefined && { random: deps.random }),
    });
    const message = `stalled: ${describeReason[reason]}`;
    const code = decision.kind === 'retry' ? 'STALLED' : decision.code;
    const kind: RecoveryEventKind = decision.kind === 'retry' ? 'stall_recovered' : 'stall_exhausted';
    const retryCount = decision.kind === 'retry' ? decision.retryNumber : row.retryCount;
    const notification = buildNotification({
      kind,
      ref,
      errorCode: code,
      errorMessage: message,
      retryCount,
      maxRetries: decision.maxRetries,
      detail: reason,
      ...(row.claimedBy !== null && { workerId: row.claimedBy }),
      ...(decision.kind === 'retry' && { delayMs: decision.delayMs }),
    });
    const error: ErrorInfo = {
      code,
      message,
      errorClass: decision.kind === 'retry' ? 'Stall' : 'StalledTooOftenError',
      retryable: decision.kind === 'retry',
    };
    const options = {
      event: {
        event: kind,
        ...(args.detectedBy !== undefined && { workerId: args.detectedBy }),
        context: {
          reason,
          claimedBy: row.claimedBy,
          retryCount,
          maxRetries: decision.maxRetries,
          ...args.details,
        },
      },
      notification,
    };
    const result =
      decision.kind === 'retry'
        ? await handler.recoverStalled(trx, ref, { delayMs: decision.delayMs, error }, options)
        : await handler.markPermanentFailure(trx, ref, { error }, options);
    if (!result.applied || result.operation === undefined) return { kind: 'not_in_progress' };
    await ensureRecorded(trx, ref, result, options, error);
    return decision.kind === 'retry'
      ? { kind: 'stall_recovered', delayMs: decision.delayMs, operation: result.operation }
      : { kind: 'stall_exhausted', operation: result.operation };
  });
  const fields = { decision: outcome.kind, reason, detectedBy: args.detectedBy };
  switch (outcome.kind) {
    case 'stall_recovered': {
      const { delayMs, operation } = outcome;
      log.warn(
        { ...fields, errorCode: 'STALLED', delayMs, retryCount: operation.retryCount },
        'stalled task recovered',
      );
      break;
    }
    case 'stall_exhausted': {
      const retryCount = outcome.operation.retryCount;
      log.error(
        { ...fields, errorCode: 'STALLED_TOO_OFTEN', retryCount },
        'stalled too often; marked failed',
      );
      break;
    }
    case 'not_in_progress':
      log.info(fields, 'stall candidate no longer in progress; left alone');
      break;
  }
  return outcome;
}
