import { parseOperationKey, type OperationRef } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import type { ExpiredTask, StalledTask } from '@ccat/heartbeat';
import { applyStallRecovery, type StallReason } from '@ccat/recovery-handlers';
import pLimit from 'p-limit';
import type { PassContext, PassCounts } from './types.js';

/**
 * Recovers every due member of one kind, batch by batch: each through its operation type's handler
 * in its own short transaction (a few at once, `monitor.recoveryConcurrency`), then removes the
 * recovered members (compare-and-delete). Members waiting out a backoff are left in place.
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
  // the next page starts after them.
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
    const now = Date.now();
    const ready = scan.tasks.filter((t) => failing.isReady(t.taskId, now));
    const done: (ExpiredTask | StalledTask)[] = [];
    await pLimit(deps.config.monitor.recoveryConcurrency).map(ready, async (task) => {
      if (!ctx.closed() && (await recoverOne(ctx, task, reason, counts))) done.push(task);
    });
    if (done.length > 0) await scanner.remove(done);
    if (scan.tasks.length < deps.config.monitor.batchSize) return true;
    offset += scan.tasks.length - done.length + ('skippedExpired' in scan ? scan.skippedExpired : 0);
  }
}

/** True when the member may be removed (recovered, or not ours to recover). */
async function recoverOne(
  ctx: PassContext,
  task: ExpiredTask | StalledTask,
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
  metrics.stallsDetected.inc({ reason });
  const overdueMs = task.kind === 'expired' ? task.overdueMs : (task.stalledForMs ?? 0);
  try {
    const outcome = await applyStallRecovery(deps.recovery, {
      ref,
      reason,
      detectedBy: deps.monitorId,
      details: { overdueMs, worker: task.details?.workerId ?? null, host: task.details?.host ?? null },
    });
    metrics.recoveries.inc({ outcome: outcome.kind, operation_type: ref.type });
    if (outcome.kind !== 'not_in_progress') {
      metrics.detectionLatency.observe({ reason }, Math.max(0, overdueMs) / 1000);
      if (outcome.kind === 'stall_recovered') counts.recovered++;
      else counts.exhausted++;
      await cleanupPartials(ctx, ref);
    }
    ctx.failing.byMember.delete(task.taskId);
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
