import { parseOperationKey, type OperationRef, type OperationType } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import type { ExpiredTask, StalledTask } from '@ccat/heartbeat';
import {
  applyStallRecoveries,
  applyStallRecovery,
  type StallOutcome,
  type StallReason,
} from '@ccat/recovery-handlers';
import pLimit from 'p-limit';
import type { PassContext, PassCounts } from './types.js';
import { monotonicNow } from './clock.js';

type Task = ExpiredTask | StalledTask;

/** Most stalls in one batched recovery statement (issue 13.3); a page is split over the lanes below this. */
const MAX_CHUNK = 1000;

/**
 * Recovers every due member of one kind, page by page: members of a built-in type in chunks, one
 * short transaction each (applyStallRecoveries), the others through their type's handler one by one
 * (a few chunks or members at once, `monitor.recoveryConcurrency`), then removes the recovered
 * members (compare-and-delete). Members waiting out a backoff, and members whose row another
 * transaction holds (skipped without waiting, retried after a short backoff), are left in place.
 * Resolves true when it saw every due member (false: stopped by close() or the batch bound).
 * Throws when Redis fails (the pass fails and is retried).
 */
export async function recoverDue(
  ctx: PassContext,
  reason: 'heartbeat_expired' | 'progress_stalled',
  counts: PassCounts,
): Promise<boolean> {
  const { scanner, deps, failing, log } = ctx;
  // Members left in place (waiting out a backoff, or failed again) stay at the head of the range:
  // the next page starts after them. A page is removed before the next is read: read ahead, the next
  // page's offset would overshoot by every member of this page that left meanwhile (a beat, another
  // monitor), and those due members would be skipped for the pass.
  let offset = 0;
  for (let batch = 0; ; batch++) {
    if (batch >= 1000 || ctx.closed()) return false;
    const scan =
      reason === 'heartbeat_expired'
        ? await scanner.scanExpired({ offset })
        : await scanner.scanStalled({ offset });
    for (const c of scan.corrupt) {
      deps.metrics.corruptEntries.inc({ kind: c.reason });
      counts.corrupt++;
    }
    if (scan.corrupt.length > 0)
      log.error(
        { corrupt: scan.corrupt.slice(0, 10), count: scan.corrupt.length },
        'corrupt heartbeat entries quarantined (see ccat-recovery status)',
      );
    if (scan.tasks.length === 0) return true;
    const now = monotonicNow();
    const ready = scan.tasks.filter((t) => failing.isReady(t.taskId, now));
    const done: Task[] = [];
    await pLimit(deps.config.monitor.recoveryConcurrency).map(plan(ctx, ready), async (group) => {
      if (ctx.closed()) return;
      if (group.type !== undefined)
        done.push(...(await recoverChunk(ctx, group.type, group.tasks, reason, counts)));
      else if (await recoverOne(ctx, group.tasks[0]!, reason, counts)) done.push(group.tasks[0]!);
    });
    if (done.length > 0) await scanner.remove(done);
    if (scan.tasks.length < deps.config.monitor.batchSize) return true;
    offset += scan.tasks.length - done.length + ('skippedExpired' in scan ? scan.skippedExpired : 0);
  }
}

/**
 * A page's work: members of a built-in type (handler with a `table`) grouped by type into chunks
 * that fill the lanes, every other member (a custom handler, or not an operation key) alone.
 */
function plan(ctx: PassContext, tasks: readonly Task[]): { type?: OperationType; tasks: Task[] }[] {
  const byType = new Map<OperationType, Task[]>();
  const groups: { type?: OperationType; tasks: Task[] }[] = [];
  for (const task of tasks) {
    let type: OperationType | undefined;
    try {
      const t = parseOperationKey(task.taskId).type;
      if (ctx.deps.recovery.registry.has(t) && ctx.deps.recovery.registry.get(t).table === t) type = t;
    } catch {
      // recoverOne says it loudly and drops it.
    }
    if (type === undefined) groups.push({ tasks: [task] });
    else if (byType.has(type)) byType.get(type)!.push(task);
    else byType.set(type, [task]);
  }
  const lanes = ctx.deps.config.monitor.recoveryConcurrency;
  for (const [type, all] of byType) {
    // Equal chunks in a multiple of the lanes: no round ends with one chunk running alone.
    const chunks = lanes * Math.ceil(all.length / (lanes * MAX_CHUNK));
    const size = Math.max(1, Math.ceil(all.length / chunks));
    for (let i = 0; i < all.length; i += size) groups.push({ type, tasks: all.slice(i, i + size) });
  }
  return groups;
}

/**
 * A member whose row another transaction holds (a worker finishing it, another monitor, an
 * operator): skipped, not waited for; counted (`ccat_recoveries_total{outcome="busy"}`), left due
 * and retried after a short backoff. Never throws.
 */
export function skipBusy(
  ctx: PassContext,
  member: string,
  ref: OperationRef,
  reconcileType?: OperationType,
): Promise<void> {
  ctx.deps.metrics.recoveries.inc({ outcome: 'busy', operation_type: ref.type });
  return ctx.failing.busy(
    member,
    ref,
    'its row is locked by another transaction (a worker finishing it, another monitor, an operator); skipped, not waited for',
    reconcileType,
  );
}

/**
 * True for an error PostgreSQL raised about one of the chunk's rows (a bad value, a constraint, a
 * deadlock, a trigger's RAISE): worth trying each row alone. Anything else (a timeout, a lost
 * connection) would fail every row the same way, one bound each: the chunk is retried later whole.
 */
function rowError(e: unknown): boolean {
  const sqlstate = classifyError(e).context?.['sqlstate'];
  return typeof sqlstate === 'string' && ['22', '23', '40', 'P0'].includes(sqlstate.slice(0, 2));
}

/**
 * Recovers a chunk of one built-in type in one transaction; returns the members that may be removed.
 * A member whose row another transaction holds is skipped (`busy`): left in place and retried on a
 * later pass (short backoff). When the chunk fails for a row's sake, each member is tried alone
 * (recoverOne), so one bad row fails only itself; when it fails otherwise (a timeout, a lost
 * connection), every member is retried later with backoff, so a stuck chunk never holds the pass.
 */
async function recoverChunk(
  ctx: PassContext,
  type: OperationType,
  tasks: readonly Task[],
  reason: StallReason,
  counts: PassCounts,
): Promise<Task[]> {
  const { deps } = ctx;
  const stalls = tasks.map((task) => ({
    ref: parseOperationKey(task.taskId),
    reason,
    details: details(task),
  }));
  let outcomes: StallOutcome[];
  try {
    outcomes = await applyStallRecoveries(deps.recovery, type, stalls, deps.monitorId);
  } catch (e) {
    if (ctx.closed()) return [];
    const err = classifyError(e).message;
    if (!rowError(e)) {
      ctx.log.warn(
        { operationType: type, size: tasks.length, err },
        'batched stall recovery failed; the chunk is retried with backoff',
      );
      deps.metrics.recoveryFailures.inc(tasks.length);
      for (const [i, task] of tasks.entries()) await ctx.failing.failed(task.taskId, stalls[i]!.ref, err);
      return [];
    }
    ctx.log.warn(
      { operationType: type, size: tasks.length, err },
      'batched stall recovery failed; recovering one by one',
    );
    const done: Task[] = [];
    for (const task of tasks) if (await recoverOne(ctx, task, reason, counts)) done.push(task);
    return done;
  }
  const done: Task[] = [];
  for (const [i, outcome] of outcomes.entries()) {
    if (outcome.kind === 'busy') {
      await skipBusy(ctx, tasks[i]!.taskId, stalls[i]!.ref);
      continue;
    }
    deps.metrics.stallsDetected.inc({ reason });
    await account(ctx, stalls[i]!.ref, tasks[i]!, reason, outcome, counts);
    done.push(tasks[i]!);
  }
  return done;
}

const details = (task: Task) => ({
  overdueMs: overdue(task),
  worker: task.details?.workerId ?? null,
  host: task.details?.host ?? null,
});
const overdue = (task: Task) => (task.kind === 'expired' ? task.overdueMs : (task.stalledForMs ?? 0));

/** Counts and observes one applied outcome, cleans up after it, and forgets the member's failures. */
async function account(
  ctx: PassContext,
  ref: OperationRef,
  task: Task,
  reason: StallReason,
  outcome: Exclude<StallOutcome, { kind: 'busy' }>,
  counts: PassCounts,
): Promise<void> {
  const { metrics } = ctx.deps;
  metrics.recoveries.inc({ outcome: outcome.kind, operation_type: ref.type });
  if (outcome.kind !== 'not_in_progress') {
    metrics.detectionLatency.observe({ reason }, Math.max(0, overdue(task)) / 1000);
    if (outcome.kind === 'stall_recovered') counts.recovered++;
    else counts.exhausted++;
    await cleanupPartials(ctx, ref);
  }
  ctx.failing.byMember.delete(task.taskId);
}

/** True when the member may be removed (recovered, or not ours to recover). */
async function recoverOne(
  ctx: PassContext,
  task: Task,
  reason: StallReason,
  counts: PassCounts,
): Promise<boolean> {
  const { deps, log } = ctx;
  const { metrics } = deps;
  let ref: OperationRef;
  try {
    ref = parseOperationKey(task.taskId);
  } catch (e) {
    // A member no operation of ours has (another service's, or garbage): said loudly, then dropped.
    metrics.corruptEntries.inc({ kind: 'foreign-member' });
    counts.corrupt++;
    log.error(
      { member: task.taskId, err: classifyError(e).message, details: task.details },
      'heartbeat member is not an operation key; removing it',
    );
    return true;
  }
  try {
    const outcome = await applyStallRecovery(deps.recovery, {
      ref,
      reason,
      detectedBy: deps.monitorId,
      details: details(task),
    });
    if (outcome.kind === 'busy') {
      await skipBusy(ctx, task.taskId, ref);
      return false;
    }
    metrics.stallsDetected.inc({ reason });
    await account(ctx, ref, task, reason, outcome, counts);
    return true;
  } catch (e) {
    metrics.recoveryFailures.inc();
    // Closing (its statements may have been cancelled): the next pass of any replica retries it.
    if (ctx.closed()) return false;
    await ctx.failing.failed(task.taskId, ref, classifyError(e).message);
    return false;
  }
}

/** Removes a recovered attempt's partial output when `monitor.cleanupPartials` is on. Never throws. */
export async function cleanupPartials(ctx: PassContext, ref: OperationRef): Promise<void> {
  const { deps, log } = ctx;
  if (!deps.config.monitor.cleanupPartials) return;
  try {
    await deps.recovery.registry.get(ref.type).cleanup({ db: deps.db, ref, logger: log });
  } catch (e) {
    log.warn(
      { operationType: ref.type, operationId: ref.id, err: classifyError(e).message },
      'partial output cleanup failed; the next attempt cleans it',
    );
  }
}
