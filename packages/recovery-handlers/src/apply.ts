// applyFailure: the decision, the state change, its operation_events row and
// its outbox notification in ONE transaction, then one structured log line. A row that moved on
// (the attempt is no longer in progress) is left alone. Stalls: stall.ts.
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
import { decideFailure, type FailureDecision, type RecoveryPolicyConfig } from './policy.js';
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

function errorInfo(e: CCATDataOperationError): ErrorInfo {
  return { code: e.code, message: e.message, errorClass: e.name, retryable: e.retryable };
}

/**
 * Writes the event and the notification a handler did not write itself (the built-in handlers write
 * them in the same statement as the state change; a custom handler may leave them to us). Same
 * transaction either way.
 */
export async function ensureRecorded(
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
