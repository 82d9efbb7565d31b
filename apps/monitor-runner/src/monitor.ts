// Over 300 lines: the loop, its pass and its bounded shutdown share the lease and the graces.
// The monitor loop (DESIGN §6). Each pass: recover expired heartbeats and progress stalls through
// the operation type's handler (one transaction each: state, event, outbox), then compare-and-delete
// the member; reconcile what Redis may have lost (pass/reconciler.ts); report scheduled rows nobody
// claimed; watch for waiting work no live worker serves (pass/unserved-watch.ts). Members whose recovery
// fails are retried with backoff and alerted (pass/failing-members.ts).
import { randomBytes } from 'node:crypto';
import { OPERATION_TYPES } from '@ccat/db';
import { classifyError, fullJitterDelayMs } from '@ccat/errors';
import { HeartbeatScanner, heartbeatKeys, releaseLease } from '@ccat/heartbeat';
import { settlesWithin } from '@ccat/service';
import { monitorTimingFor } from './config.js';
import { FailingMembers } from './pass/failing-members.js';
import { Reconciler } from './pass/reconciler.js';
import { recoverDue } from './pass/recover-due.js';
import { cancelOwnStatements } from './pass/shutdown.js';
import type { MonitorDeps, PassContext, PassCounts } from './pass/types.js';
import { UnservedWatch } from './pass/unserved-watch.js';
import { monotonicNow } from './pass/clock.js';

/** What one pass did, and how long the loop sleeps after it. */
export interface PassReport extends Readonly<PassCounts> {
  /** False when another replica held the lease: this pass did nothing. */
  readonly ran: boolean;
  /** How long the loop sleeps after this pass. */
  readonly sleepMs: number;
}

const MIN_SLEEP_MS = 20;
const NO_COUNTS: Readonly<PassCounts> = {
  recovered: 0,
  exhausted: 0,
  reconciled: 0,
  staleScheduled: 0,
  corrupt: 0,
};

/**
 * The stalled-task monitor (DESIGN §6): one loop of passes over the heartbeat set and the operation
 * tables. It owns its HeartbeatScanner, the in-process retry state of failing recoveries and the
 * reconciliation schedule; it borrows the database, Redis, logger and metrics of `deps` and never
 * closes them.
 *
 * Lifecycle: `new Monitor(deps)` → `start()` runs the loop (or `runPass()` one pass, for tests and
 * benchmarks) → `close()` (also `await using`). Each pass runs under a short Redis lease
 * (`monitor.leaseMs`), so replicas do not repeat one scan; it sleeps until the earliest of the next
 * heartbeat deadline, the next database deadline, the next retry and `monitor.loopIntervalMs`.
 *
 * Guarantees: each stall is recovered exactly once: at most once per attempt (the handlers' updates
 * are fenced on the attempt, so replicas are safe), and at least once because a member is kept, and
 * tried again, until its recovery committed or its row moved on; its member is removed only after the recovery committed
 * (compare-and-delete, so a member re-registered for a newer attempt is kept); a failing recovery
 * never fails the pass; a failed pass is retried with backoff, and expired members then get one
 * liveness bound of grace so live workers can beat again. Every step is idempotent: what a closed or
 * crashed monitor leaves, the next pass of any replica does.
 */
export class Monitor implements AsyncDisposable {
  readonly #deps: MonitorDeps;
  readonly #leaseKey: string;
  readonly #reconciler: Reconciler;
  readonly #unserved: UnservedWatch;
  /** What the pass steps (pass/*.ts) share with this monitor. */
  readonly #ctx: PassContext;
  #loop: Promise<void> | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  #closing: Promise<void> | undefined;
  #failures = 0;
  /**
   * After Redis lost data, came back older, stepped its clock forward, or could not be watched for
   * longer than restored deadlines can spare (Reconciler.checkRedis), expired members are left alone
   * until this time: live workers get one liveness bound to beat and re-register what they own.
   */
  #expiredGraceUntil = 0;
  readonly #minTimeoutMs: number;

  constructor(deps: MonitorDeps) {
    this.#deps = deps;
    const m = deps.config.monitor;
    const timeouts = [
      m.livenessTimeoutMs,
      ...OPERATION_TYPES.map((t) => monitorTimingFor(deps.config, t).progressTimeoutMs),
    ];
    const log = deps.logger.child({ component: 'monitor', monitorId: deps.monitorId });
    const scanner = new HeartbeatScanner({
      redis: deps.redis,
      keyPrefix: deps.config.keyPrefix,
      batchSize: deps.config.monitor.batchSize,
      maxDeadlineAheadMs: Math.max(...timeouts) + deps.config.monitor.deadlineSlackMs,
      logger: log,
    });
    // Under the deployment's hash tag like every other key (DESIGN §5, §11): `ccat:{ccat}:monitor:lease`.
    this.#leaseKey = monitorLeaseKey(deps.config.keyPrefix);
    const failing = new FailingMembers({ db: deps.db, config: deps.config, log });
    this.#ctx = {
      deps,
      log,
      scanner,
      failing,
      closed: () => this.#closed,
      redisAnswered: () => {
        if (this.#failures > 0) this.#wake?.();
      },
      redisDataLost: (graceMs, seenHere) => {
        // Restored deadlines are already past while their workers live: they get one liveness
        // bound to beat and re-register.
        this.#expiredGraceUntil = Math.max(this.#expiredGraceUntil, monotonicNow() + graceMs);
        if (seenHere)
          log.warn(
            { graceMs: this.#deps.config.monitor.livenessTimeoutMs },
            "Redis lost data or came back with older data (flushed, restored from an older snapshot, a lagging replica promoted): expired heartbeats wait one liveness bound for live workers to re-register; see docs/runbook.md, 'Redis flushed, restarted without its data, or back with older data'",
          );
      },
    };
    this.#reconciler = new Reconciler(this.#ctx);
    this.#unserved = new UnservedWatch(this.#ctx);
    // A member's deadline is at most one liveness bound away (its process beats), its progress
    // deadline at most the longest progress bound: nothing sooner than the liveness bound can come
    // due for a member registered after a pass, and a row claimed after a pass crosses the watch
    // threshold no sooner than that from now: sleeping no longer, the next pass's probe still sees
    // it coming.
    this.#minTimeoutMs = Math.min(m.livenessTimeoutMs, this.#reconciler.watchAfterMs);
  }

  /** Starts the loop; a no-op when it runs already or the monitor is closed. */
  start(): void {
    if (this.#loop === undefined && !this.#closed) this.#loop = this.#run();
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let sleepMs: number;
      try {
        // No grace for failed passes as such: a PostgreSQL fault alone leaves the workers beating
        // (a 0.2 s connection reset kept a dead worker's task 24 s, issue 13 adversary, rounds 8-9),
        // and a Redis outage long enough to cost a live worker its deadline is a gap between the
        // counter's answers, which gives expired heartbeats one bound (Reconciler.checkRedis).
        sleepMs = (await this.runPass()).sleepMs;
        this.#failures = 0;
      } catch (e) {
        this.#failures++;
        this.#deps.metrics.passes.inc({ result: 'failed' });
        // Backs off to one beat interval at most (a dead worker's tasks are recovered one liveness
        // bound after the first pass that works again; backing off to the loop interval kept them
        // 21-33 s after a Redis outage, issue 13 adversary, round 7), woken sooner when Redis
        // answers again (redisAnswered). The next pass retries everything that was not done.
        const { loopIntervalMs, heartbeatIntervalMs } = this.#deps.config.monitor;
        sleepMs = Math.max(
          MIN_SLEEP_MS,
          fullJitterDelayMs(this.#failures, {
            baseMs: 500,
            maxMs: Math.min(loopIntervalMs, heartbeatIntervalMs),
          }),
        );
        if (!this.#closed)
          this.#ctx.log.warn({ err: classifyError(e).message, retryInMs: sleepMs }, 'monitor pass failed');
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
    let got: string | null;
    try {
      got = await this.#deps.redis.set(this.#leaseKey, token, 'PX', config.monitor.leaseMs, 'NX');
    } catch (e) {
      // Timed out here, it may still run in Redis (a hung server that resumes): released after it
      // on the same connection, so a lease no pass holds does not block every replica for leaseMs
      // (issue 13 adversary, round 7: a dead worker's task kept 10 s after a Redis outage).
      void releaseLease(this.#deps.redis, this.#leaseKey, token).catch(() => undefined);
      throw e;
    }
    if (got !== 'OK') {
      metrics.passes.inc({ result: 'lease_busy' });
      // Another replica is in its pass and does what is due: wait for its lease, not in 20 ms steps.
      const leaseLeftMs = await this.#deps.redis.pttl(this.#leaseKey);
      if (leaseLeftMs === -1) {
        // A lease without expiry (written by hand, or of another type) would skip every pass of
        // every replica forever: given one lease time to lapse, and said loudly.
        await this.#deps.redis.pexpire(this.#leaseKey, config.monitor.leaseMs);
        this.#ctx.log.error(
          { key: this.#leaseKey, expiresInMs: config.monitor.leaseMs },
          'monitor lease key had no expiry (no monitor sets one so); it now expires',
        );
      }
      return {
        ran: false,
        ...NO_COUNTS,
        sleepMs: Math.min(
          config.monitor.loopIntervalMs,
          Math.max(await this.#sleepFor(), leaseLeftMs > 0 ? leaseLeftMs : MIN_SLEEP_MS),
        ),
      };
    }
    const stop = metrics.passDuration.startTimer();
    try {
      const counts: PassCounts = { ...NO_COUNTS };
      this.#ctx.failing.pass++;
      // Data Redis lost or restored older is known before any expired member is judged.
      await this.#reconciler.checkRedis();
      // Whether this pass's scans saw every due member (so members not seen are no longer due).
      let sawAllDue = false;
      if (monotonicNow() >= this.#expiredGraceUntil)
        sawAllDue = await recoverDue(this.#ctx, 'heartbeat_expired', counts);
      if (config.monitor.progressStalls && !this.#closed)
        sawAllDue = (await recoverDue(this.#ctx, 'progress_stalled', counts)) && sawAllDue;
      // A member no longer due (recovered elsewhere, beat again, re-registered) starts afresh.
      if (sawAllDue) this.#ctx.failing.forgetUnseenScanned();
      // Closing: the rest of the pass is the next process's (its steps are all idempotent).
      if (!this.#closed) await this.#reconciler.run(counts);
      if (!this.#closed) await this.#unserved.run();
      metrics.passes.inc({ result: 'ran' });
      metrics.lastPass.set(Date.now() / 1000);
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
    const next = await this.#ctx.scanner.nextDeadline(new Set(this.#ctx.failing.byMember.keys()));
    const now = monotonicNow();
    // In the grace after failed passes expired members wait for its end (taken below).
    const graceEnds = this.#expiredGraceUntil > now;
    if (next !== undefined && (next.kind === 'deadline' ? !graceEnds : config.monitor.progressStalls))
      ms = Math.min(ms, next.inMs);
    ms = Math.min(ms, this.#ctx.failing.nextRetryAt() - now, this.#reconciler.nextDueAt() - now);
    if (graceEnds) ms = Math.min(ms, this.#expiredGraceUntil - now);
    return Math.max(MIN_SLEEP_MS, ms);
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
      // The reads of the workers' records between passes stop too (one in flight is awaited).
      const reads = this.#reconciler.close();
      const loop = this.#loop === undefined ? reads : Promise.all([this.#loop, reads]);
      const boundMs = this.#deps.config.shutdown.timeoutMs;
      if (await settlesWithin(loop, boundMs / 3)) return;
      this.#ctx.log.warn(
        { waitedMs: Math.round(boundMs / 3) },
        'monitor pass still running at shutdown; cancelling its database statements',
      );
      const cancelled = await settlesWithin(
        cancelOwnStatements(this.#deps.db, this.#deps.monitorId, this.#ctx.log),
        boundMs / 6,
      );
      if (await settlesWithin(loop, cancelled ? boundMs / 3 : boundMs / 6)) return;
      this.#ctx.log.warn(
        'monitor pass still blocked at shutdown: abandoned (its lease lapses; the next pass redoes it)',
      );
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * The monitors' lease key for a deployment's `keyPrefix`, under its Redis Cluster hash tag like the
 * heartbeat keys (`ccat:` → `ccat:{ccat}:monitor:lease`). Throws ConfigurationError for a bad prefix.
 */
export function monitorLeaseKey(keyPrefix: string): string {
  return `${heartbeatKeys({ keyPrefix }).namespace}monitor:lease`;
}
