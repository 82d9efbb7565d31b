import { createPgOutboxStore, type Database, type OperationRef, type OperationType } from '@ccat/db';
import { classifyError, eventLevel, fullJitterDelayMs } from '@ccat/errors';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { MonitorConfig } from '../config.js';
import { monotonicNow } from './clock.js';

/** A member whose recovery failed: when it may be tried again, and whether it was alerted. */
export interface FailingMember {
  failures: number;
  retryAt: number;
  alerted: boolean;
  /** The pass that last saw it due; entries not seen by a complete pass are dropped. */
  seenInPass: number;
  /**
   * Set for a row with no heartbeat member, found by reconciliation of this type: dropped when a
   * complete reconciliation of the type no longer sees it (scans never see it).
   */
  reconcileType?: OperationType;
}

/** Ceiling of the first retry of a failed recovery (full jitter, doubling up to recoveryRetryMaxMs). */
const RETRY_INITIAL_MS = 1000;
/** Ceiling of the retry of a member whose row was locked elsewhere (see FailingMembers.busy). */
const BUSY_RETRY_MAX_MS = 1000;

/**
 * The members whose recovery failed, by member (issue 12), and the pass counter that ages them out.
 * A failed member is retried after a full-jitter backoff (up to 1 s, the ceiling doubling up to
 * `monitor.recoveryRetryMaxMs`; the loop sleeps until then rather than rescanning it every 20 ms);
 * after `monitor.recoveryAlertAfter` failures, one ERROR notification through the outbox names it.
 * The count lives in this process: another replica, or a restart, counts afresh.
 */
export class FailingMembers {
  /** By member (`type:id:attempt`). */
  readonly byMember = new Map<string, FailingMember>();
  /** The number of the pass in progress (1 for the first); the Monitor counts it up. */
  pass = 0;
  readonly #deps: { readonly db: Kysely<Database>; readonly config: MonitorConfig; readonly log: Logger };

  constructor(deps: { readonly db: Kysely<Database>; readonly config: MonitorConfig; readonly log: Logger }) {
    this.#deps = deps;
  }

  /** True when a due member found by a scan may be recovered now; marks it seen by this pass. */
  isReady(member: string, now: number): boolean {
    const f = this.byMember.get(member);
    if (f !== undefined) f.seenInPass = this.pass;
    return f === undefined || f.retryAt <= now;
  }

  /** The earliest retry time of the members of one reconciled type, or of all; Infinity if none. */
  nextRetryAt(reconcileType?: OperationType): number {
    let at = Infinity;
    for (const f of this.byMember.values())
      if (reconcileType === undefined || f.reconcileType === reconcileType) at = Math.min(at, f.retryAt);
    return at;
  }

  /** After scans that saw every due member: members they no longer found (no longer due) start afresh. */
  forgetUnseenScanned(): void {
    for (const [member, f] of this.byMember)
      if (f.reconcileType === undefined && f.seenInPass !== this.pass) this.byMember.delete(member);
  }

  /**
   * Records a member skipped because another transaction holds its row: as a failure (counted, and
   * alerted after `monitor.recoveryAlertAfter` in a row: a lock held that long is worth a look) but
   * retried after at most BUSY_RETRY_MAX_MS, since such locks are short (a completion) or ended by the
   * server's idle-in-transaction bound (a frozen process). Never throws.
   */
  busy(member: string, ref: OperationRef, err: string, reconcileType?: OperationType): Promise<void> {
    return this.failed(member, ref, err, reconcileType, BUSY_RETRY_MAX_MS);
  }

  /**
   * Records a failed recovery, sets its retry time (full jitter, at most `maxDelayMs` when given),
   * and alerts once it failed often enough. Never throws.
   */
  async failed(
    member: string,
    ref: OperationRef,
    err: string,
    reconcileType?: OperationType,
    maxDelayMs = Infinity,
  ): Promise<void> {
    const f = this.byMember.get(member) ?? {
      failures: 0,
      retryAt: 0,
      alerted: false,
      seenInPass: this.pass,
      ...(reconcileType !== undefined && { reconcileType }),
    };
    f.failures++;
    f.seenInPass = this.pass;
    const { recoveryRetryMaxMs, recoveryAlertAfter } = this.#deps.config.monitor;
    const jittered = fullJitterDelayMs(f.failures, {
      baseMs: Math.min(RETRY_INITIAL_MS, maxDelayMs),
      maxMs: Math.min(recoveryRetryMaxMs, maxDelayMs),
    });
    // A capped retry waits at least half its cap: never a hot loop of passes 20 ms apart.
    const delayMs = Number.isFinite(maxDelayMs) ? Math.max(jittered, Math.floor(maxDelayMs / 2)) : jittered;
    f.retryAt = monotonicNow() + delayMs;
    this.byMember.set(member, f);
    const op = { member, operationType: ref.type, operationId: ref.id, attempt: ref.attempt };
    this.#deps.log.warn(
      { ...op, failures: f.failures, retryInMs: delayMs, err },
      'stall recovery failed; retrying with backoff',
    );
    if (f.alerted || f.failures < recoveryAlertAfter) return;
    try {
      await createPgOutboxStore(this.#deps.db).enqueue({
        level: eventLevel('recovery_failing'),
        eventKind: 'recovery_failing',
        subject: `${ref.type} ${ref.id}: the monitor cannot recover its stalled attempt`,
        body: [
          `What: heartbeat member ${member} (${ref.type} ${ref.id}, attempt ${ref.attempt}) is ${reconcileType === undefined ? 'overdue' : 'missing while its row is in progress'}, and recovering it failed ${f.failures} times.`,
          `Error: ${err}`,
        ].join('\n'),
        // The catalogue gives the action and advice; the details name this row's retry command.
        context: {
          ...op,
          failures: f.failures,
          error: err,
          retryCommand: `ccat-recovery retry ${ref.type} ${ref.id}`,
        },
        dedupKey: `recovery_failing:${member}`,
        operation: { type: ref.type, id: ref.id, attempt: ref.attempt },
      });
      f.alerted = true;
      this.#deps.log.error(
        { ...op, failures: f.failures, err },
        'stall recovery keeps failing; ERROR notification queued',
      );
    } catch (e) {
      this.#deps.log.warn(
        { member, err: classifyError(e).message },
        'cannot queue the recovery-failing notification; trying again after the next failure',
      );
    }
  }
}
