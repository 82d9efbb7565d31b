// applyStallRecovery / applyStallRecoveries: a stalled attempt's decision (policy.ts), the state
// change, its operation_events row and its outbox notification in ONE transaction. One attempt
// through its type's handler, or a chunk of one built-in type through @ccat/db's batched statement
// (issue 13.3); both build the same records. An attempt that moved on is left alone.
import {
  lockInProgressMany,
  recoverStalledMany,
  type ErrorInfo,
  type StallState,
  type OperationType,
  type StallRecoveryRow,
} from '@ccat/db';
import { ensureRecorded, type RecoveryDeps } from './apply.js';
import type { TaskRef } from './handler.js';
import { buildNotification, type RecoveryEventKind } from './notifications.js';
import { decideStall, type StallDecision } from './policy.js';

/** Why the monitor holds an attempt stalled; recorded in the event's context and the notification. */
export type StallReason = 'heartbeat_expired' | 'progress_stalled' | 'no_heartbeat';

/**
 * What applyStallRecovery applied (or `not_in_progress` / `busy`: nothing), with the operation's
 * state after it (a full OperationSnapshot from applyStallRecovery, the counters and claim from the
 * batched applyStallRecoveries).
 */
export type StallOutcome =
  | { readonly kind: 'stall_recovered'; readonly delayMs: number; readonly operation: StallState }
  | { readonly kind: 'stall_exhausted'; readonly operation: StallState }
  /** The attempt had already finished or moved on: nothing to recover. */
  | { readonly kind: 'not_in_progress' }
  /**
   * Still in progress, but another transaction holds its row (a worker in its completion, another
   * monitor, an operator): skipped without waiting, nothing changed. Still due: try again later.
   */
  | { readonly kind: 'busy' };

/** One stalled attempt to recover, why, and what the monitor saw (into the event's context). */
export interface StallTask {
  readonly ref: TaskRef;
  readonly reason: StallReason;
  readonly details?: Readonly<Record<string, unknown>>;
}

const DESCRIBE: Record<StallReason, string> = {
  heartbeat_expired: 'no heartbeat before its deadline (process dead or frozen)',
  progress_stalled: 'heartbeats continued but progress stopped (hung I/O)',
  no_heartbeat: 'in progress with no heartbeat and no sign of life in the database',
};

/** The error class recorded for each failing stall code. */
const FAIL_CLASS: Record<string, string> = {
  STALLED_TOO_OFTEN: 'StalledTooOftenError',
  POISON_OPERATION: 'PoisonOperationError',
};

/**
 * The decision for one locked row (policy.ts decideStall), and the transition, error, event and
 * notification that record it. `shared`: the handler can count a shared stall apart
 * (recoverSharedStall); without it, every stall uses a retry (the rule before issue 13.4).
 */
function stallRecords(
  deps: RecoveryDeps,
  task: StallTask,
  row: StallState,
  detectedBy: string | undefined,
  shared: boolean,
) {
  const { ref, reason } = task;
  const decide = (processLost: boolean): StallDecision =>
    decideStall({
      config: deps.policy,
      operationType: ref.type,
      row,
      processLost,
      ...(deps.random !== undefined && { random: deps.random }),
    });
  let decision = decide(reason !== 'progress_stalled');
  if (decision.kind === 'shared' && !shared) decision = decide(false);
  const transition =
    decision.kind === 'shared' ? 'sharedStall' : decision.kind === 'retry' ? 'stall' : 'fail';
  const retry = decision.kind !== 'fail';
  const alone = row.runAlone ? '; it ran alone in its process' : '';
  const counted =
    decision.kind === 'shared'
      ? `; its process ran other tasks too, so no retry is used (shared stall ${decision.stallCount}, alone from ${deps.policy.isolateAfterStalls})`
      : '';
  const message = `stalled: ${DESCRIBE[reason]}${alone}${counted}`;
  const code = decision.kind === 'fail' ? decision.code : 'STALLED';
  const kind: RecoveryEventKind = retry ? 'stall_recovered' : 'stall_exhausted';
  const retryCount = decision.kind === 'retry' ? decision.retryNumber : row.retryCount;
  const delayMs = decision.kind === 'fail' ? 0 : decision.delayMs;
  const runAlone = decision.kind === 'shared' ? decision.runAlone : row.runAlone;
  const stallCount = decision.kind === 'shared' ? decision.stallCount : row.stallCount;
  const notification = buildNotification({
    kind,
    ref,
    errorCode: code,
    errorMessage: message,
    retryCount,
    maxRetries: decision.maxRetries,
    detail: row.runAlone ? `${reason}, alone` : reason,
    ...(row.claimedBy !== null && { workerId: row.claimedBy }),
    ...(retry && { delayMs }),
  });
  const error: ErrorInfo = {
    code,
    message,
    errorClass: retry ? 'Stall' : (FAIL_CLASS[code] ?? 'StalledTooOftenError'),
    retryable: retry,
  };
  const context = {
    reason,
    counted: decision.kind === 'shared' ? 'shared' : 'own',
    claimedBy: row.claimedBy,
    retryCount,
    maxRetries: decision.maxRetries,
    stallCount,
    runAlone,
  };
  const event = {
    event: kind,
    ...(detectedBy !== undefined && { workerId: detectedBy }),
    context: { ...context, ...task.details },
  };
  return { transition, retry, delayMs, runAlone, error, options: { event, notification } } as const;
}

function outcomeOf(retry: boolean, delayMs: number, operation: StallState): StallOutcome {
  return retry ? { kind: 'stall_recovered', delayMs, operation } : { kind: 'stall_exhausted', operation };
}

function log(deps: RecoveryDeps, task: StallTask, outcome: StallOutcome, detectedBy?: string): void {
  const { ref, reason } = task;
  const l = deps.logger.child({ operationType: ref.type, operationId: ref.id, attempt: ref.attempt });
  const fields = { decision: outcome.kind, reason, detectedBy };
  switch (outcome.kind) {
    case 'stall_recovered': {
      const { delayMs, operation } = outcome;
      const { retryCount, stallCount, runAlone } = operation;
      l.warn(
        { ...fields, errorCode: 'STALLED', delayMs, retryCount, stallCount, runAlone },
        'stalled task recovered',
      );
      break;
    }
    case 'stall_exhausted': {
      const { retryCount, stallCount, lastErrorCode } = outcome.operation;
      l.error(
        { ...fields, errorCode: lastErrorCode, retryCount, stallCount },
        'stalled too often; marked failed',
      );
      break;
    }
    case 'not_in_progress':
      l.info(fields, 'stall candidate no longer in progress; left alone');
      break;
    case 'busy':
      l.info(fields, 'stall candidate locked by another transaction; skipped, retried later');
      break;
  }
}

/**
 * Recovers a stalled attempt (dead, frozen or hung) through its type's handler: back to pending with
 * backoff (a shared stall counted apart from retries, policy.ts decideStall), or failed with
 * STALLED_TOO_OFTEN / POISON_OPERATION when its own stalls used up the retries; event and notification
 * in the same transaction. An attempt that is no longer in progress is left alone (`not_in_progress`);
 * one whose row another transaction holds is skipped without waiting (`busy`, when the handler has
 * tryLockInProgress, as the built-ins do): still due, the caller tries it again later.
 */
export async function applyStallRecovery(
  deps: RecoveryDeps,
  args: StallTask & { readonly detectedBy?: string },
): Promise<StallOutcome> {
  const { ref, detectedBy } = args;
  const handler = deps.registry.get(ref.type);
  const outcome = await deps.db.transaction().execute(async (trx): Promise<StallOutcome> => {
    // Never waits for a row another transaction holds (a frozen process must not hold the pass).
    const row =
      handler.tryLockInProgress !== undefined
        ? await handler.tryLockInProgress(trx, ref)
        : await handler.lockInProgress(trx, ref);
    if (row === undefined) return { kind: 'not_in_progress' };
    if (row === 'locked') return { kind: 'busy' };
    const shared = handler.recoverSharedStall !== undefined;
    const r = stallRecords(deps, args, row, detectedBy, shared);
    const { retry, delayMs, error, options } = r;
    const result =
      r.transition === 'sharedStall' && handler.recoverSharedStall !== undefined
        ? await handler.recoverSharedStall(trx, ref, { delayMs, error, runAlone: r.runAlone }, options)
        : retry
          ? await handler.recoverStalled(trx, ref, { delayMs, error }, options)
          : await handler.markPermanentFailure(trx, ref, { error }, options);
    if (!result.applied || result.operation === undefined) return { kind: 'not_in_progress' };
    await ensureRecorded(trx, ref, result, options, error);
    return outcomeOf(retry, delayMs, result.operation);
  });
  log(deps, args, outcome, detectedBy);
  return outcome;
}

/**
 * Recovers many stalled attempts of one built-in `type` (its handler's `table`) in one short
 * transaction of two statements: lock the rows still in progress at their attempt, then apply every
 * decision with its event and outbox row (@ccat/db recoverStalledMany). Same decisions, records and
 * fencing as applyStallRecovery; the answer is per task, in order. Rows are locked with SKIP LOCKED
 * in id order: a row another transaction holds (a frozen worker in its completion, another monitor)
 * is never waited for but answered `busy` (still due; the caller retries it later), and each stall is
 * recovered exactly once. Throws TypeError for a type with a custom handler, and when the database fails (nothing
 * applied).
 */
export async function applyStallRecoveries(
  deps: RecoveryDeps,
  type: OperationType,
  tasks: readonly StallTask[],
  detectedBy?: string,
): Promise<StallOutcome[]> {
  if (deps.registry.get(type).table !== type)
    throw new TypeError(`${type} has a custom recovery handler; recover its stalls one by one`);
  const key = (id: string, attempt: number) => `${id}:${attempt}`;
  const outcomes = await deps.db.transaction().execute(async (trx) => {
    const { locked, busy } = await lockInProgressMany(
      trx,
      type,
      tasks.map((t) => t.ref),
    );
    const held = new Set(busy.map((r) => key(r.id, r.attempt)));
    const byKey = new Map(locked.map((row) => [key(row.id, row.attempt), row]));
    const decided = new Map<string, { retry: boolean; delayMs: number }>();
    // The task that recovers each locked row: the first naming it; a repeat (the same stall under
    // two members, e.g. attempt `0` and `00`) finds it moved on, as it would one by one.
    const owner = new Map<string, number>();
    const rows: StallRecoveryRow[] = [];
    for (const [i, task] of tasks.entries()) {
      const k = key(task.ref.id, task.ref.attempt);
      const row = byKey.get(k);
      if (row === undefined || owner.has(k)) continue;
      owner.set(k, i);
      const { transition, retry, delayMs, runAlone, error, options } = stallRecords(
        deps,
        task,
        row,
        detectedBy,
        true,
      );
      decided.set(row.id, { retry, delayMs });
      rows.push({ id: row.id, attempt: row.attempt, transition, runAlone, delayMs, error, ...options });
    }
    const applied = await recoverStalledMany(trx, type, rows);
    return tasks.map((task, i): StallOutcome => {
      const k = key(task.ref.id, task.ref.attempt);
      if (held.has(k)) return { kind: 'busy' };
      const operation = applied.get(task.ref.id);
      const d = decided.get(task.ref.id);
      if (operation === undefined || d === undefined || owner.get(k) !== i)
        return { kind: 'not_in_progress' };
      return outcomeOf(d.retry, d.delayMs, operation);
    });
  });
  const recovered = outcomes.filter((o) => o.kind === 'stall_recovered').length;
  outcomes.forEach((o, i) => o.kind === 'stall_exhausted' && log(deps, tasks[i]!, o, detectedBy));
  if (recovered > 0)
    deps.logger.warn(
      { operationType: type, recovered, examples: tasks.slice(0, 5).map((t) => t.ref.id), detectedBy },
      'stalled tasks recovered (batch)',
    );
  return outcomes;
}
