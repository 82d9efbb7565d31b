// The monitor loop (DESIGN §6). Each pass: recover expired heartbeats and progress stalls through
// the operation type's handler (one transaction each: state, event, outbox), then compare-and-delete
// the member; reconcile what Redis may have lost (and tasks that died before their first beat);
// report scheduled rows nobody claimed. It sleeps until the earliest of the next heartbeat deadline,
// the next in-progress row's database deadline and the loop interval, so a stall is found close
// to its timeout. Several replicas are safe (conditional updates); a short Redis lease keeps them from
// repeating one scan.
import { randomBytes } from 'node:crypto';
import {
  createPgOutboxStore,
  nextStaleInProgressInMs,
  OPERATION_TYPES,
  parseOperationKey,
  staleInProgress,
  staleScheduled,
  type Database,
  type OperationRef,
  type OperationType,
} from '@ccat/db';
import { classifyError, eventLevel, fullJitterDelayMs } from '@ccat/errors';
import { sql } from 'kysely';
import { HeartbeatScanner, releaseLease, type ExpiredTask, type StalledTask } from '@ccat/heartbeat';
import { applyStallRecovery, type RecoveryDeps, type StallReason } from '@ccat/recovery-handlers';
import type { Redis } from 'ioredis';
import pLimit from 'p-limit';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { monitorTimingFor, type MonitorConfig } from './config.js';
import type { MonitorMetrics } from './metrics.js';

export interface MonitorDeps {
  readonly db: Kysely<Database>;
  readonly redis: Redis;
  readonly logger: Logger;
  readonly config: MonitorConfig;
  readonly monitorId: string;
  readonly recovery: RecoveryDeps;
  readonly metrics: MonitorMetrics;
}

export interface PassReport {
  readonly ran: boolean;
  readonly recovered: number;
  readonly exhausted: number;
  readonly reconciled: number;
  readonly staleScheduled: number;
  readonly corrupt: number;
  /** How long the loop sleeps after this pass. */
  readonly sleepMs: number;
}

/** A member whose recovery failed: when it may be tried again, and whether it was alerted. */
interface FailingMember {
  failures: number;
  retryAt: number;
  alerted: boolean;
  lastError: string;
  /** The pass that last saw it due; entries not seen by a complete pass are dropped. */
  seenInPass: number;
  /**
   * Set for a row with no heartbeat member, found by reconciliation of this type: dropped when a
   * complete reconciliation of the type no longer sees it (scans never see it).
   */
  reconcileType?: OperationType;
}

const RETRY_INITIAL_MS = 1000;

/** True when `p` settles within `ms`; never rejects (the caller only waits for it). */
function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    const done = () => {
      clearTimeout(t);
      resolve(true);
    };
    p.then(done, done);
  });
}

const MIN_SLEEP_MS = 20;
/** Pages of stale rows looked at per type and pass (each `monitor.batchSize` rows). */
const MAX_RECONCILE_PAGES = 20;

export class Monitor implements AsyncDisposable {
  readonly #deps: MonitorDeps;
  readonly #scanner: HeartbeatScanner;
  readonly #leaseKey: string;
  readonly #log: Logger;
  readonly #nextReconcile = new Map<string, number>();
  readonly #nextScheduledCheck = new Map<string, number>();
  /** Per type: when the next in-progress row's database sign of life reaches its timeout. */
  readonly #nextStale = new Map<string, number>();
  #loop: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #failures = 0;
  /**
   * After passes failed (Redis or PostgreSQL unreachable), expired members are left alone until one
   * liveness bound after the first pass that works again: the workers could not beat meanwhile
   * either, and get that long to show they are alive (their beats refresh what they still own).
   */
  #expiredGraceUntil = 0;
  #nextBoundsCheck = 0;
  /** Emitters already reported for bounds that disagree with this monitor's (reported once each). */
  readonly #boundsReported = new Set<string>();
  readonly #minTimeoutMs: number;
  /** A row with no member is watched once its last sign of life is older than this (one beat + margin). */
  readonly #watchAfterMs: number;
  /** ... and recovered once its member has been missing for this long (see #reconcileType). */
  readonly #absentForMs: number;
  /** Per member of a watched row: when this monitor first saw it missing. */
  readonly #absentSince = new Map<string, { readonly type: OperationType; readonly at: number }>();
  /** Members whose recovery failed, by member: retried with backoff, alerted once (issue 12). */
  readonly #failing = new Map<string, FailingMember>();
  #pass = 0;
  /** Whether this pass's scans saw every due member (so members not seen are no longer due). */
  #sawAllDue = true;

  constructor(deps: MonitorDeps) {
    this.#deps = deps;
    const m = deps.config.monitor;
    const timeouts = [
      m.livenessTimeoutMs,
      ...OPERATION_TYPES.map((t) => monitorTimingFor(deps.config, t).progressTimeoutMs),
    ];
    // A member's deadline is at most one liveness bound away (its process beats), its progress
    // deadline at most the longest progress bound: nothing sooner than the liveness bound can
    // come due for a member registered after a pass ...
    const marginMs = Math.min(1000, Math.ceil(m.heartbeatIntervalMs / 2));
    this.#watchAfterMs = m.heartbeatIntervalMs + marginMs;
    // ... and a row claimed after a pass crosses the watch threshold no sooner than that from now:
    // sleeping no longer, the next pass's probe still sees it coming (see #reconcile).
    this.#minTimeoutMs = Math.min(m.livenessTimeoutMs, this.#watchAfterMs);
    this.#absentForMs = Math.max(m.livenessTimeoutMs - this.#watchAfterMs, this.#watchAfterMs);
    this.#log = deps.logger.child({ component: 'monitor', monitorId: deps.monitorId });
    this.#scanner = new HeartbeatScanner({
      redis: deps.redis,
      keyPrefix: deps.config.keyPrefix,
      batchSize: deps.config.monitor.batchSize,
      maxDeadlineAheadMs: Math.max(...timeouts) + deps.config.monitor.deadlineSlackMs,
      logger: this.#log,
    });
    this.#leaseKey = `${deps.config.keyPrefix}monitor:lease`;
  }

  start(): void {
    if (this.#loop === undefined && !this.#closed) this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let sleepMs: number;
      try {
        if (this.#failures > 0)
          this.#expiredGraceUntil = Date.now() + this.#deps.config.monitor.livenessTimeoutMs;
        sleepMs = (await this.runPass()).sleepMs;
        this.#failures = 0;
      } catch (e) {
        this.#failures++;
        this.#deps.metrics.passes.inc({ result: 'failed' });
        // Backs off to the loop interval; the next pass retries everything that was not done.
        sleepMs = Math.max(
          MIN_SLEEP_MS,
          fullJitterDelayMs(this.#failures, { baseMs: 500, maxMs: this.#deps.config.monitor.loopIntervalMs }),
        );
        if (!this.#closed)
          this.#log.warn({ err: classifyError(e).message, retryInMs: sleepMs }, 'monitor pass failed');
      }
      // Looked at before sleeping: a close() during the pass ends the loop now, not after a sleep.
      if (this.#closed) break;
      await this.#sleep(sleepMs);
    }
  }

  /** Sleeps `ms`, or until close() wakes it; returns at once when closed. */
  #sleep(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  /** One pass (also what tests and the benchmark call). Throws when Redis or PostgreSQL fail. */
  async runPass(): Promise<PassReport> {
    const { config, metrics } = this.#deps;
    const token = `${this.#deps.monitorId}:${randomBytes(6).toString('hex')}`;
    const got = await this.#deps.redis.set(this.#leaseKey, token, 'PX', config.monitor.leaseMs, 'NX');
    if (got !== 'OK') {
      metrics.passes.inc({ result: 'lease_busy' });
      // Another replica is in its pass and does what is due: wait for its lease, not in 20 ms steps.
      const leaseLeftMs = await this.#deps.redis.pttl(this.#leaseKey);
      if (leaseLeftMs === -1) {
        // A lease without expiry (written by hand, or of another type) would skip every pass of
        // every replica forever: given one lease time to lapse, and said loudly.
        await this.#deps.redis.pexpire(this.#leaseKey, config.monitor.leaseMs);
        this.#log.error(
          { key: this.#leaseKey, expiresInMs: config.monitor.leaseMs },
          'monitor lease key had no expiry (no monitor sets one so); it now expires',
        );
      }
      return {
        ran: false,
        recovered: 0,
        exhausted: 0,
        reconciled: 0,
        staleScheduled: 0,
        corrupt: 0,
        sleepMs: Math.min(
          config.monitor.loopIntervalMs,
          Math.max(await this.#sleepFor(), leaseLeftMs > 0 ? leaseLeftMs : MIN_SLEEP_MS),
        ),
      };
    }
    const stop = metrics.passDuration.startTimer();
    try {
      const counts = { recovered: 0, exhausted: 0, reconciled: 0, staleScheduled: 0, corrupt: 0 };
      this.#pass++;
      this.#sawAllDue = true;
      if (Date.now() >= this.#expiredGraceUntil) await this.#drain('heartbeat_expired', counts);
      else this.#sawAllDue = false;
      if (config.monitor.progressStalls && !this.#closed) await this.#drain('progress_stalled', counts);
      // A member no longer due (recovered elsewhere, beat again, re-registered) starts afresh.
      if (this.#sawAllDue) {
        for (const [member, f] of this.#failing)
          if (f.reconcileType === undefined && f.seenInPass !== this.#pass) this.#failing.delete(member);
      }
      // Closing: the rest of the pass is the next process's (its steps are all idempotent).
      if (!this.#closed) await this.#reconcile(counts);
      metrics.passes.inc({ result: 'ran' });
      if (this.#closed) return { ran: true, ...counts, sleepMs: 0 };
      return { ran: true, ...counts, sleepMs: await this.#sleepFor() };
    } finally {
      stop();
      await releaseLease(this.#deps.redis, this.#leaseKey, token).catch(() => undefined);
    }
  }

  /**
   * Until the earlier of the next deadline, the next reconciliation, the next retry of a member whose
   * recovery failed and the loop interval. Members waiting out their backoff do not count as due.
   */
  async #sleepFor(): Promise<number> {
    const { config } = this.#deps;
    // A member registered after this pass cannot expire sooner than the shortest heartbeat timeout
    // from now: never sleep longer than that, or a task started meanwhile would be found late.
    let ms = Math.min(config.monitor.loopIntervalMs, this.#minTimeoutMs);
    const next = await this.#scanner.nextDeadline(new Set(this.#failing.keys()));
    const now = Date.now();
    // In the grace after failed passes expired members wait for its end (taken below).
    const graceEnds = this.#expiredGraceUntil > now;
    if (next !== undefined && (next.kind === 'deadline' ? !graceEnds : config.monitor.progressStalls))
      ms = Math.min(ms, next.inMs);
    for (const f of this.#failing.values()) ms = Math.min(ms, f.retryAt - now);
    for (const a of this.#absentSince.values()) ms = Math.min(ms, a.at + this.#absentForMs - now);
    if (this.#expiredGraceUntil > now) ms = Math.min(ms, this.#expiredGraceUntil - now);
    for (const at of this.#nextReconcile.values()) ms = Math.min(ms, at - now);
    for (const at of this.#nextStale.values()) ms = Math.min(ms, at - now);
    return Math.max(MIN_SLEEP_MS, ms);
  }

  /** Recovers every due member of one kind, batch by batch. */
  async #drain(
    reason: 'heartbeat_expired' | 'progress_stalled',
    counts: Record<string, number>,
  ): Promise<void> {
    // Members left in place (waiting out a backoff, or failed again) stay at the head of the range:
    // the next page starts after them.
    let offset = 0;
    for (let batch = 0; ; batch++) {
      if (batch >= 1000 || this.#closed) {
        this.#sawAllDue = false;
        return;
      }
      const scan =
        reason === 'heartbeat_expired'
          ? await this.#scanner.scanExpired({ offset })
          : await this.#scanner.scanStalled({ offset });
      for (const c of scan.corrupt) {
        this.#deps.metrics.corruptEntries.inc({ kind: c.reason });
        counts['corrupt'] = (counts['corrupt'] ?? 0) + 1;
      }
      if (scan.corrupt.length > 0)
        this.#log.error(
          { corrupt: scan.corrupt.slice(0, 10), count: scan.corrupt.length },
          'corrupt heartbeat entries quarantined (see ccat-recovery status)',
        );
      if (scan.tasks.length === 0) return;
      const now = Date.now();
      const ready = scan.tasks.filter((t) => {
        const f = this.#failing.get(t.taskId);
        if (f !== undefined) f.seenInPass = this.#pass;
        return f === undefined || f.retryAt <= now;
      });
      const done: (ExpiredTask | StalledTask)[] = [];
      // Each recovery is its own short transaction; a few run at once (bounded by the pool).
      await pLimit(this.#deps.config.monitor.recoveryConcurrency).map(ready, async (task) => {
        if (!this.#closed && (await this.#recoverOne(task, reason, counts))) done.push(task);
      });
      if (done.length > 0) await this.#scanner.remove(done);
      if (scan.tasks.length < this.#deps.config.monitor.batchSize) return;
      offset += scan.tasks.length - done.length + ('skippedExpired' in scan ? scan.skippedExpired : 0);
    }
  }

  /**
   * A member whose recovery failed: retried after a full-jitter backoff (up to 1 s, the ceiling
   * doubling up to `monitor.recoveryRetryMaxMs`)
   * (the loop sleeps until then rather than rescanning it every 20 ms); after
   * `monitor.recoveryAlertAfter` failures, one ERROR notification through the outbox names it. The
   * count lives in this process: another replica, or a restart, counts afresh.
   */
  async #recoveryFailed(
    member: string,
    ref: OperationRef,
    err: string,
    reconcileType?: OperationType,
  ): Promise<void> {
    const { config } = this.#deps;
    const f = this.#failing.get(member) ?? {
      failures: 0,
      retryAt: 0,
      alerted: false,
      lastError: '',
      seenInPass: this.#pass,
      ...(reconcileType !== undefined && { reconcileType }),
    };
    f.failures++;
    f.lastError = err;
    f.seenInPass = this.#pass;
    const delayMs = fullJitterDelayMs(f.failures, {
      baseMs: RETRY_INITIAL_MS,
      maxMs: config.monitor.recoveryRetryMaxMs,
    });
    f.retryAt = Date.now() + delayMs;
    this.#failing.set(member, f);
    this.#log.warn(
      {
        member,
        operationType: ref.type,
        operationId: ref.id,
        attempt: ref.attempt,
        failures: f.failures,
        retryInMs: delayMs,
        err,
      },
      'stall recovery failed; retrying with backoff',
    );
    if (f.alerted || f.failures < config.monitor.recoveryAlertAfter) return;
    try {
      await createPgOutboxStore(this.#deps.db).enqueue({
        level: eventLevel('recovery_failing'),
        eventKind: 'recovery_failing',
        subject: `${ref.type} ${ref.id}: the monitor cannot recover its stalled attempt`,
        body: [
          `What: heartbeat member ${member} (${ref.type} ${ref.id}, attempt ${ref.attempt}) is ${reconcileType === undefined ? 'overdue' : 'missing while its row is in progress'}, and recovering it failed ${f.failures} times.`,
          `Error: ${err}`,
          `Done: the monitor keeps retrying every ${Math.ceil(config.monitor.recoveryRetryMaxMs / 1000)} s at most; the row stays in progress until a recovery succeeds.`,
          `To do: read the monitor's log lines for this member, fix the cause (database errors, a custom handler), or recover it by hand: ccat-recovery retry ${ref.type} ${ref.id}`,
        ].join('\n'),
        context: {
          member,
          operationType: ref.type,
          operationId: ref.id,
          attempt: ref.attempt,
          failures: f.failures,
          error: err,
        },
        dedupKey: `recovery_failing:${member}`,
        operation: { type: ref.type, id: ref.id, attempt: ref.attempt },
      });
      f.alerted = true;
      this.#log.error(
        { member, operationType: ref.type, operationId: ref.id, failures: f.failures, err },
        'stall recovery keeps failing; ERROR notification queued',
      );
    } catch (e) {
      this.#log.warn(
        { member, err: classifyError(e).message },
        'cannot queue the recovery-failing notification; trying again after the next failure',
      );
    }
  }

  /** True when the member may be removed (recovered, or not ours to recover). */
  async #recoverOne(
    task: ExpiredTask | StalledTask,
    reason: StallReason,
    counts: Record<string, number>,
  ): Promise<boolean> {
    const { metrics } = this.#deps;
    let ref: OperationRef;
    try {
      ref = parseOperationKey(task.taskId);
    } catch (e) {
      // A member no operation of ours has (another service's, or garbage): said loudly, then dropped.
      metrics.corruptEntries.inc({ kind: 'foreign-member' });
      counts['corrupt'] = (counts['corrupt'] ?? 0) + 1;
      this.#log.error(
        { member: task.taskId, err: classifyError(e).message, details: task.details },
        'heartbeat member is not an operation key; removing it',
      );
      return true;
    }
    metrics.stallsDetected.inc({ reason });
    const overdueMs = task.kind === 'expired' ? task.overdueMs : (task.stalledForMs ?? 0);
    try {
      const outcome = await applyStallRecovery(this.#deps.recovery, {
        ref,
        reason,
        detectedBy: this.#deps.monitorId,
        details: { overdueMs, worker: task.details?.workerId ?? null, host: task.details?.host ?? null },
      });
      metrics.recoveries.inc({ outcome: outcome.kind, operation_type: ref.type });
      if (outcome.kind !== 'not_in_progress') {
        metrics.detectionLatency.observe({ reason }, Math.max(0, overdueMs) / 1000);
        if (outcome.kind === 'stall_recovered') counts['recovered'] = (counts['recovered'] ?? 0) + 1;
        else counts['exhausted'] = (counts['exhausted'] ?? 0) + 1;
        await this.#cleanup(ref);
      }
      this.#failing.delete(task.taskId);
      return true;
    } catch (e) {
      metrics.recoveryFailures.inc();
      // Closing (its statements may have been cancelled): the next pass of any replica retries it.
      if (this.#closed) return false;
      await this.#recoveryFailed(task.taskId, ref, classifyError(e).message);
      return false;
    }
  }

  async #cleanup(ref: OperationRef): Promise<void> {
    if (!this.#deps.config.monitor.cleanupPartials) return;
    try {
      await this.#deps.recovery.registry.get(ref.type).cleanup({ db: this.#deps.db, ref, logger: this.#log });
    } catch (e) {
      this.#log.warn(
        { operationType: ref.type, operationId: ref.id, err: classifyError(e).message },
        'partial output cleanup failed; the next attempt cleans it',
      );
    }
  }

  /**
   * For when Redis lost data, and for tasks that died before their first beat: in-progress rows with
   * no heartbeat member are recovered the same way, within about the liveness bound of their last
   * sign of life (see #reconcileType). Scheduled rows nobody claimed are reported; re-creating their
   * job is the workers' dispatcher's (one owner, no double dispatch).
   */
  async #reconcile(counts: Record<string, number>): Promise<void> {
    const { config, db } = this.#deps;
    const now = Date.now();
    // Rows of live tasks cross the watch threshold all the time (they write their database sign of
    // life every progressWriteIntervalMs): at most one reconciliation per type per half beat.
    const minGapMs = Math.ceil(config.monitor.heartbeatIntervalMs / 2);
    for (const type of OPERATION_TYPES) {
      if (this.#closed) return;
      const timing = monitorTimingFor(config, type);
      // Due by the loop interval, because an in-progress row's database sign of life passed the
      // watch threshold (workers register a task's heartbeat with their next beat, so a task whose
      // process dies first leaves only that), or because a missing member has been missing long
      // enough.
      let dueAt = Math.min(this.#nextReconcile.get(type) ?? 0, this.#nextStale.get(type) ?? Infinity);
      for (const a of this.#absentSince.values())
        if (a.type === type) dueAt = Math.min(dueAt, a.at + this.#absentForMs);
      for (const f of this.#failing.values())
        if (f.reconcileType === type) dueAt = Math.min(dueAt, f.retryAt);
      if (dueAt <= now) {
        // At least every watch threshold: after Redis lost data, the rows of tasks that died
        // meanwhile are watched (and so recovered within about the liveness bound) without any
        // row crossing the threshold to wake the monitor.
        this.#nextReconcile.set(type, now + Math.min(timing.loopIntervalMs, this.#watchAfterMs));
        await this.#reconcileType(type, counts);
      }
      // One index probe per type and pass (a task claimed later is watched no sooner than the watch
      // threshold from now, and the loop never sleeps longer than the liveness bound).
      const inMs = await nextStaleInProgressInMs(db, type, { olderThanMs: this.#watchAfterMs });
      if (inMs === undefined) this.#nextStale.delete(type);
      else this.#nextStale.set(type, Math.max(Date.now() + inMs + 10, now + minGapMs));
    }
    try {
      this.#deps.metrics.inFlight.set((await this.#scanner.counts()).inFlight);
    } catch {
      // metrics only
    }
    if (now >= this.#nextBoundsCheck) {
      this.#nextBoundsCheck = now + config.monitor.loopIntervalMs;
      await this.#checkWorkerBounds();
    }
  }

  /**
   * The workers set the deadlines; this monitor reconciles and sleeps by its own copy of their
   * bounds. A sample of in-flight members (their details carry the liveness bound they were tracked
   * with) is compared with monitor.livenessTimeoutMs: a disagreement is logged as an error once per
   * emitter (a longer worker bound: live tasks' members may be missing longer than this monitor
   * waits; a shorter one: dead tasks found late by reconciliation). Read-only; never throws.
   */
  async #checkWorkerBounds(): Promise<void> {
    const { config } = this.#deps;
    try {
      const page = await this.#scanner.list({ limit: 200 });
      for (const t of page.tasks) {
        const d = t.details;
        if (d === undefined || this.#boundsReported.has(d.emitterId)) continue;
        if (d.timeoutMs !== config.monitor.livenessTimeoutMs) {
          this.#boundsReported.add(d.emitterId);
          this.#log.error(
            {
              emitterId: d.emitterId,
              workerId: d.workerId ?? d.attributes?.['workerId'],
              member: t.taskId,
              workerLivenessTimeoutMs: d.timeoutMs,
              livenessTimeoutMs: config.monitor.livenessTimeoutMs,
            },
            "a worker's liveness bound differs from monitor.livenessTimeoutMs: set both to the same value (docs/runbook.md, Liveness and progress)",
          );
        }
      }
    } catch (e) {
      this.#log.debug(
        { err: classifyError(e).message },
        'cannot sample in-flight tasks for the bounds check',
      );
    }
  }

  /**
   * Rows of `type` in progress with no sign of life for one beat interval + margin are watched; one
   * whose heartbeat member is missing is recovered once this monitor has seen it missing for
   * max(liveness − that, that). A live process re-registers a member Redis lost on its next beat,
   * well within that, so a Redis flush never recovers a live task; a task that died before its first
   * beat is recovered about one liveness bound after its claim.
   */
  async #reconcileType(type: OperationType, counts: Record<string, number>): Promise<void> {
    const { config, db, metrics } = this.#deps;
    const { progressTimeoutMs } = monitorTimingFor(config, type);
    // Page past stale rows whose tasks still beat (live tasks that write no progress to the
    // database), so a dead one behind them is not left waiting; bounded per pass.
    let afterId: string | undefined;
    const seen = new Set<string>();
    let complete = false;
    for (let page = 0; page < MAX_RECONCILE_PAGES && !this.#closed; page++) {
      const stale = await staleInProgress(db, type, {
        olderThanMs: this.#watchAfterMs,
        limit: config.monitor.batchSize,
        ...(afterId !== undefined && { afterId }),
      });
      if (stale.length === 0) {
        complete = true;
        break;
      }
      let scores: (string | null)[] | undefined;
      try {
        scores = await this.#deps.redis.zmscore(
          this.#scanner.keys.deadlines,
          ...stale.map((row) => `${type}:${row.id}:${row.attempt}`),
        );
      } catch (e) {
        this.#log.warn(
          { err: classifyError(e).message },
          'cannot check heartbeats; reconciling by the database alone (rows silent for their progress timeout)',
        );
      }
      const now = Date.now();
      for (const [i, row] of stale.entries()) {
        if (this.#closed) return;
        const member = `${type}:${row.id}:${row.attempt}`;
        seen.add(member);
        const failing = this.#failing.get(member);
        if (scores?.[i] != null) {
          this.#absentSince.delete(member);
          if (failing?.reconcileType !== undefined) this.#failing.delete(member);
          continue;
        }
        if (failing?.reconcileType !== undefined) {
          // Its recovery failed before: retried on its own backoff, not after another absence wait.
          failing.seenInPass = this.#pass;
          if (failing.retryAt > now) continue;
        } else if (scores === undefined) {
          // Redis unreachable: a live task writes its database sign of life every few seconds, so
          // only a row silent for its whole progress timeout is surely dead.
          const silentMs = row.lastSeenAt === null ? Infinity : now - row.lastSeenAt.getTime();
          if (silentMs < progressTimeoutMs) continue;
        } else {
          const since = this.#absentSince.get(member)?.at ?? now;
          if (!this.#absentSince.has(member)) this.#absentSince.set(member, { type, at: now });
          if (now - since < this.#absentForMs) continue;
        }
        this.#absentSince.delete(member);
        const ref = { type, id: row.id, attempt: row.attempt };
        let outcome: Awaited<ReturnType<typeof applyStallRecovery>>;
        try {
          outcome = await applyStallRecovery(this.#deps.recovery, {
            ref,
            reason: 'no_heartbeat',
            detectedBy: this.#deps.monitorId,
          });
        } catch (e) {
          // One row's failing recovery (a database error, a custom handler) must not fail the
          // pass: a failed pass holds back every expired member for a liveness bound. Retried with
          // backoff and alerted like a member found by the scans.
          metrics.recoveryFailures.inc();
          if (this.#closed) return;
          await this.#recoveryFailed(member, ref, classifyError(e).message, type);
          continue;
        }
        this.#failing.delete(member);
        metrics.recoveries.inc({ outcome: outcome.kind, operation_type: type });
        if (outcome.kind !== 'not_in_progress') {
          counts['reconciled'] = (counts['reconciled'] ?? 0) + 1;
          metrics.stallsDetected.inc({ reason: 'no_heartbeat' });
          await this.#cleanup({ type, id: row.id, attempt: row.attempt });
        }
      }
      if (stale.length < config.monitor.batchSize) {
        complete = true;
        break;
      }
      afterId = stale.at(-1)!.id;
    }
    // A member no longer watched (its row moved on, or showed a sign of life) is forgotten.
    if (complete) {
      for (const [member, a] of this.#absentSince)
        if (a.type === type && !seen.has(member)) this.#absentSince.delete(member);
      for (const [member, f] of this.#failing)
        if (f.reconcileType === type && !seen.has(member)) this.#failing.delete(member);
    }
    // Reported once per loop interval (reconciliation itself runs more often).
    const checkAt = this.#nextScheduledCheck.get(type) ?? 0;
    if (Date.now() < checkAt) return;
    this.#nextScheduledCheck.set(type, Date.now() + monitorTimingFor(config, type).loopIntervalMs);
    const scheduled = await staleScheduled(db, type, {
      olderThanMs: config.monitor.scheduleTimeoutMs,
      limit: config.monitor.batchSize,
    });
    metrics.staleScheduled.set({ operation_type: type }, scheduled.length);
    if (scheduled.length > 0) {
      counts['staleScheduled'] = (counts['staleScheduled'] ?? 0) + scheduled.length;
      this.#log.warn(
        {
          operationType: type,
          count: scheduled.length,
          examples: scheduled.slice(0, 5).map((s) => `${type}:${s.id}:${s.attempt}`),
        },
        "scheduled operations not claimed within the schedule timeout; the workers' dispatcher re-creates vanished jobs (is a worker serving their queue?)",
      );
    }
  }

  /**
   * Stops the loop, within `shutdown.timeoutMs` × 2/3 (the rest of the shutdown bound is left for
   * the relay, the health key and the connections). A sleeping loop ends at once. A pass in flight
   * stops at its next step (between scans, batches, recoveries and types); every step is idempotent,
   * so what it leaves is done by the next pass of any replica. A pass still blocked on PostgreSQL
   * after a third of the bound has its statements cancelled (`pg_cancel_backend` of this monitor's
   * own connections: only when the pool's application_name names this monitorId, as ccat-monitor's
   * does); one still blocked after two thirds is abandoned with a warning: its lease lapses by
   * itself (`monitor.leaseMs`) and its transaction, if any, rolls back when its connection closes.
   * Never throws. Safe to call twice.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#wake?.();
      const loop = this.#loop;
      if (loop === undefined) return;
      const boundMs = this.#deps.config.shutdown.timeoutMs;
      if (await settlesWithin(loop, boundMs / 3)) return;
      this.#log.warn(
        { waitedMs: Math.round(boundMs / 3) },
        'monitor pass still running at shutdown; cancelling its database statements',
      );
      const cancelled = await settlesWithin(this.#cancelOwnStatements(), boundMs / 6);
      if (await settlesWithin(loop, cancelled ? boundMs / 3 : boundMs / 6)) return;
      this.#log.warn(
        'monitor pass still blocked at shutdown: abandoned (its lease lapses; the next pass redoes it)',
      );
    })();
    return this.#closing;
  }

  /** Cancels the running statements of this monitor's own connections (see close()). */
  async #cancelOwnStatements(): Promise<void> {
    try {
      const { rows } = await sql<{ pid: number }>`
        SELECT pid FROM pg_stat_activity
        WHERE application_name = current_setting('application_name')
          AND position(${this.#deps.monitorId} in current_setting('application_name')) > 0
          AND datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`.execute(
        this.#deps.db,
      );
      for (const { pid } of rows) await sql`SELECT pg_cancel_backend(${pid})`.execute(this.#deps.db);
      this.#log.info({ cancelled: rows.length }, 'cancelled the blocked pass statements');
    } catch (e) {
      this.#log.warn({ err: classifyError(e).message }, 'cannot cancel the blocked pass statements');
    }
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
