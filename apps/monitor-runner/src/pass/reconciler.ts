// Over 300 lines: one reconciliation schedule per type, its absence waits per member and per worker, and the bounds check share one state.
import {
  createPgOutboxStore,
  databaseNow,
  nextStaleInProgressInMs,
  notifiedWithin,
  OPERATION_TYPES,
  staleInProgress,
  staleScheduled,
  type OperationType,
} from '@ccat/db';
import { classifyError, EVENT_CATALOGUE, eventLevel, formatDuration } from '@ccat/errors';
import { ServiceHealthReader } from '@ccat/heartbeat';
import { applyStallRecovery } from '@ccat/recovery-handlers';
import { alertWindowMs, monitorTimingFor } from '../config.js';
import { cleanupPartials, skipBusy } from './recover-due.js';
import type { PassContext, PassCounts } from './types.js';
import { monotonicNow } from './clock.js';

/** Pages of stale rows looked at per type and pass (each `monitor.batchSize` rows). */
const MAX_RECONCILE_PAGES = 20;

/**
 * For when Redis lost data, and for tasks that died before their first beat: in-progress rows with
 * no heartbeat member are recovered the same way as expired members, within about the liveness bound
 * of their last sign of life (see #reconcileType). Scheduled rows nobody claimed are reported;
 * re-creating their job is the workers' dispatcher's (one owner, no double dispatch). Also samples
 * the workers' liveness bounds (#checkWorkerBounds). Owns its schedule per type; one per Monitor.
 */
export class Reconciler {
  readonly #ctx: PassContext;
  /** A row with no member is watched once its last sign of life is older than this (one beat + margin). */
  readonly watchAfterMs: number;
  /** ... and recovered once its member has been missing for this long (see #reconcileType). */
  readonly #absentForMs: number;
  readonly #nextReconcile = new Map<string, number>();
  readonly #nextScheduledCheck = new Map<string, number>();
  /** Per type: when the next in-progress row's database sign of life reaches its timeout. */
  readonly #nextStale = new Map<string, number>();
  /**
   * Per member of a watched row: when this monitor first saw it missing, and how long it waits
   * before recovering it (the longer of its own bound and the row's worker's, see #workerLiveness).
   */
  readonly #absentSince = new Map<
    string,
    {
      readonly type: OperationType;
      readonly at: number;
      readonly waitMs: number;
      /** When to look again: at + waitMs, or sooner when the worker's health record expires first. */
      readonly checkAt: number;
    }
  >();
  /**
   * The liveness bound each worker advertises in its health record (`info.livenessTimeoutMs`), by
   * worker id (rows' claimed_by); kept for this process's life, so a Redis that lost the health keys
   * does not make this monitor forget a worker's longer bound (the records are read once per beat
   * interval whether or not a row needs them, so the bounds are known before Redis loses them).
   */
  readonly #workerLiveness = new Map<string, number>();
  /**
   * Per worker id: the database time before the first claim of the process that writes its health
   * record (`info.claimsSince`), kept like the bounds. Rows it claimed earlier belong to a process
   * before it under the same id (a container restarted in its pod), which the record does not vouch for.
   */
  readonly #workerClaimsSince = new Map<string, number>();
  /** Per worker id: when its health record expires (by monotonicNow) as of the last read, while alive. */
  readonly #workerExpiresAt = new Map<string, number>();
  /** Per worker id: whether its health record said alive at the last read (absent: no record). */
  readonly #workersAlive = new Map<string, boolean>();
  /**
   * Per worker id whose bound this monitor knows: since when (monotonicNow) its record has been
   * missing altogether, registry entry too (Redis lost it). Its process has not beaten since then:
   * every beat writes the record in the same script (a worker's emitter carries it), so its last
   * beat, and any member it registered, are no later than this.
   */
  readonly #workerGoneSince = new Map<string, number>();
  /** When this monitor last saw Redis lose data (a record gone altogether, or the counter back). */
  #dataLostAt: number | undefined;
  #workersReadAt = 0;
  /** How often Redis is checked for lost data and new workers between passes (see #watchRedis). */
  readonly #recordReadMs: number;
  #readTimer: NodeJS.Timeout | undefined;
  /** The last value this monitor got from the shared counter (see checkRedis). */
  #seq: number | undefined;
  /** When (monotonicNow) this monitor last got an answer from the counter. */
  #seqAt: number | undefined;
  /** The last check failed (Redis unreachable): the next answer wakes the loop (redisAnswered). */
  #checkFailed = false;
  /**
   * Redis's TIME (ms) and this monitor's monotonicNow at each answer of the last liveness bound (a
   * step is judged against each), the last answer's last.
   */
  #clocks: { readonly redis: number; readonly at: number }[] = [];
  /**
   * A longer gap between two answers (this monitor frozen or paused, or Redis unreachable) could hide
   * a restore (the snapshot may hold the last value it got): expired heartbeats then wait one bound.
   * Restored deadlines are at least liveness − interval ahead of the snapshot and a live worker beats
   * within one interval, so a restore inside a shorter gap leaves them time.
   */
  readonly #blindAfterMs: number;
  /** Registry entries at the last read of the records: a change means a new worker, or a loss. */
  #registrySize: number | undefined;
  #reading: Promise<void> | undefined;
  #nextBoundsCheck = 0;
  /** Emitters already reported for bounds that disagree with this monitor's (reported once each). */
  readonly #boundsReported = new Set<string>();

  constructor(ctx: PassContext) {
    this.#ctx = ctx;
    const m = ctx.deps.config.monitor;
    const marginMs = Math.min(1000, Math.ceil(m.heartbeatIntervalMs / 2));
    this.watchAfterMs = m.heartbeatIntervalMs + marginMs;
    this.#absentForMs = Math.max(m.livenessTimeoutMs - this.watchAfterMs, this.watchAfterMs);
    this.#recordReadMs = Math.min(1000, Math.ceil(m.heartbeatIntervalMs / 2));
    // At least 2 s: a loaded machine delays a check now and then, and each false alarm holds back
    // expired members for a bound.
    this.#blindAfterMs = Math.max(
      2000,
      3 * this.#recordReadMs,
      m.livenessTimeoutMs - 2 * m.heartbeatIntervalMs,
    );
  }

  /** Stops the checks between passes; resolves once one in flight ends. */
  async close(): Promise<void> {
    clearTimeout(this.#readTimer);
    this.#readTimer = undefined;
    await this.#reading;
  }

  /**
   * Whether Redis lost data or came back with older data (restored from an older snapshot, a
   * lagging replica promoted, flushed), and whether a worker registered: one round trip, INCR of a
   * counter every monitor increments (`<ns>monitor:seq`) and HLEN of the services registry. A counter
   * no greater than the last one this monitor got means the data went back: the Monitor's
   * `redisDataLost` runs (expired heartbeats then wait one liveness bound: restored deadlines are
   * already past while their workers live, issue 13 adversary: live tasks recovered 0.4-2 s after a
   * restart from an 8 s old snapshot), and the grace is told to the other monitors through
   * `<ns>monitor:grace` (PX the bound), which every check reads. The same holds after a gap between
   * two answers longer than `#blindAfterMs`, and at a first answer when no monitor watched within
   * that gap (`<ns>monitor:watched`, PX the gap: written by every monitor from its second answer).
   * A changed registry, or a loss, reads the workers' records now, so a record lost is seen gone
   * within a second and a new worker's bound is known before Redis could lose it. Never throws.
   */
  checkRedis(): Promise<void> {
    // One at a time (the timer's and a pass's): the counter's answers are compared in order.
    return (this.#reading ??= this.#checkRedis().finally(() => (this.#reading = undefined)));
  }

  async #checkRedis(): Promise<void> {
    const { redis, config } = this.#ctx.deps;
    const { keys } = this.#ctx.scanner;
    const graceKey = `${keys.namespace}monitor:grace`;
    const watchedKey = `${keys.namespace}monitor:watched`;
    const clockKey = `${keys.namespace}monitor:clock`;
    const graceMs = config.monitor.livenessTimeoutMs;
    const first = this.#seqAt === undefined;
    try {
      const pipeline = redis
        .pipeline()
        .incr(`${keys.namespace}monitor:seq`)
        .hlen(keys.services)
        .pttl(graceKey)
        .time();
      // Read at the first answer, written (by a monitor that has watched since its previous answer)
      // at every later one: absent at a first answer, no monitor watched Redis within the blind gap.
      // INFO and TIME go with the pipeline to the node that holds these keys (one hash tag).
      // `<ns>monitor:clock` (no expiry): Redis's time at a watching monitor's last answer.
      if (first) pipeline.get(watchedKey).info('server').get(clockKey);
      else
        pipeline
          .set(watchedKey, this.#ctx.deps.monitorId, 'PX', this.#blindAfterMs)
          .set(clockKey, String(this.#clocks.at(-1)?.redis ?? 0));
      const results = await pipeline.exec();
      const [seqReply, sizeReply, graceReply, timeReply, watchedReply, infoReply, clockReply] = results ?? [];
      const failed = results?.find((r) => r[0])?.[0];
      if (failed) throw failed;
      const seq = Number(seqReply?.[1]);
      const now = monotonicNow();
      const [sec, micro] = (timeReply?.[1] as [string, string] | undefined) ?? ['0', '0'];
      const redisNow = Number(sec) * 1000 + Math.floor(Number(micro) / 1000);
      // Redis's clock against this monitor's monotonic one since the last answer: a step forward
      // (an NTP step, a failover to a host whose clock is ahead) expires live heartbeats early;
      // longer than restored deadlines can spare, it is a loss like a restore (issue 13 adversary,
      // round 7: a live task recovered 1.3 s after a 30 s step).
      // Over the last liveness bound, not only since the last answer: steps of under 4 s each add up
      // (issue 13 adversary, round 8: three 3.5 s steps 1.2 s apart recovered a live task).
      this.#clocks = this.#clocks.filter((c) => now - c.at <= graceMs);
      const drifts = this.#clocks.map((c) => redisNow - c.redis - (now - c.at));
      const stepMs = Math.max(0, ...drifts);
      const backMs = Math.min(0, ...drifts);
      const steppedForward = stepMs > this.#blindAfterMs;
      // A step counts once: the window starts again from here.
      if (steppedForward || backMs < -this.#blindAfterMs) this.#clocks = [];
      this.#clocks.push({ redis: redisNow, at: now });
      if (steppedForward)
        this.#ctx.log.warn(
          { stepMs: Math.round(stepMs) },
          "Redis's clock stepped forward: heartbeat deadlines came early, so expired heartbeats wait one liveness bound",
        );
      else if (backMs < -this.#blindAfterMs)
        this.#ctx.log.warn(
          { stepMs: Math.round(backMs) },
          "Redis's clock stepped back: a worker that dies before its next beat has its tasks recovered up to that much later than its bound",
        );
      // Frozen (SIGSTOP, a paused VM) across a restore, this monitor gets a higher value than its last
      // one from the restored counter (issue 13 adversary: a live task recovered 0.1 s after the restore).
      const blind = !first && now - this.#seqAt! > this.#blindAfterMs;
      // Started when no monitor watched, within one bound of Redis's own start (a node that failed
      // with both, Redis back from its snapshot): it cannot know the counter's last value either,
      // and restored deadlines may still be stale (issue 13 adversary, round 6). Redis up for longer:
      // live workers have re-registered whatever it came back with.
      // Also when the last watching monitor's answer is further back in Redis's time than the blind
      // gap: no monitor watched since (a restart of the only one), or Redis's clock stepped forward
      // meanwhile (issue 13 adversary, round 8: a live task recovered 1.8 s after a 30 s step).
      const lastWatched = Number(clockReply?.[1] ?? NaN);
      const unwatched =
        first &&
        watchedReply?.[1] == null &&
        (redisUptimeMs(infoReply?.[1]) < graceMs || redisNow - lastWatched > this.#blindAfterMs);
      const counterBack = this.#seq !== undefined && seq <= this.#seq;
      const wentBack = counterBack || blind || unwatched || steppedForward;
      if (blind)
        this.#ctx.log.warn(
          { blindMs: Math.round(now - this.#seqAt!) },
          'this monitor could not watch Redis for a while (frozen, paused, or Redis unreachable): it cannot tell whether Redis came back with older data meanwhile',
        );
      if (unwatched)
        this.#ctx.log.warn(
          { graceMs },
          "no monitor watched Redis just before this one started (Redis restarted, the monitors restarted, or Redis's clock stepped forward): heartbeat deadlines may be stale or early, so expired heartbeats wait one liveness bound",
        );
      this.#seq = seq;
      this.#seqAt = now;
      if (wentBack) {
        this.#dataLostAt = now;
        this.#ctx.redisDataLost(graceMs, !unwatched && !steppedForward);
        // Told to the other monitors on evidence about Redis (one that started after the loss cannot
        // tell by itself); not when only this monitor could not watch: the others did (one frozen
        // replica held back every replica's recoveries, issue 13 adversary, round 9).
        if (counterBack || steppedForward || unwatched)
          await redis.set(graceKey, this.#ctx.deps.monitorId, 'PX', graceMs);
      } else if (Number(graceReply?.[1]) > 0) {
        // Another monitor saw the loss: the same grace, counted from its detection.
        if (this.#dataLostAt === undefined || now - this.#dataLostAt > graceMs) this.#dataLostAt = now;
        this.#ctx.redisDataLost(Number(graceReply?.[1]), false);
      }
      if (wentBack || Number(sizeReply?.[1]) !== this.#registrySize) await this.#readWorkers();
      if (this.#checkFailed) {
        this.#checkFailed = false;
        this.#ctx.redisAnswered();
      }
    } catch (e) {
      this.#checkFailed = true;
      this.#ctx.log.debug({ err: classifyError(e).message }, 'cannot check Redis for lost data');
    }
  }

  /** checkRedis every #recordReadMs between passes, from the first pass until close. */
  #watchRedis(): void {
    if (this.#readTimer !== undefined || this.#ctx.closed()) return;
    this.#readTimer = setTimeout(() => {
      if (this.#ctx.closed()) return;
      void this.checkRedis().finally(() => {
        this.#readTimer = undefined;
        this.#watchRedis();
      });
    }, this.#recordReadMs);
    this.#readTimer.unref();
  }

  /** When reconciliation is next due (by monotonicNow, see clock.ts): the loop sleeps no longer. */
  nextDueAt(): number {
    let at = Infinity;
    for (const a of this.#absentSince.values()) at = Math.min(at, a.checkAt);
    for (const t of this.#nextReconcile.values()) at = Math.min(at, t);
    for (const t of this.#nextStale.values()) at = Math.min(at, t);
    return at;
  }

  /** Reconciles every type that is due, then refreshes the in-flight gauge and checks worker bounds. */
  async run(counts: PassCounts): Promise<void> {
    const { config, db, metrics } = this.#ctx.deps;
    const now = monotonicNow();
    // Rows of live tasks cross the watch threshold all the time (they write their database sign of
    // life every progressWriteIntervalMs): at most one reconciliation per type per half beat.
    const minGapMs = Math.ceil(config.monitor.heartbeatIntervalMs / 2);
    // The workers' bounds, known before a row needs them: after Redis lost data (their records
    // with it), a slow worker's rows still wait out its own bound.
    if (now - this.#workersReadAt >= config.monitor.heartbeatIntervalMs) await this.#readWorkers();
    for (const type of OPERATION_TYPES) {
      if (this.#ctx.closed()) return;
      const timing = monitorTimingFor(config, type);
      // Due by the loop interval, because an in-progress row's database sign of life passed the
      // watch threshold (workers register a task's heartbeat with their next beat, so a task whose
      // process dies first leaves only that), or because a missing member has been missing long
      // enough.
      let dueAt = Math.min(this.#nextReconcile.get(type) ?? 0, this.#nextStale.get(type) ?? Infinity);
      for (const a of this.#absentSince.values()) if (a.type === type) dueAt = Math.min(dueAt, a.checkAt);
      dueAt = Math.min(dueAt, this.#ctx.failing.nextRetryAt(type));
      if (dueAt <= now) {
        // At least every watch threshold: after Redis lost data, the rows of tasks that died
        // meanwhile are watched (and so recovered within about the liveness bound) without any
        // row crossing the threshold to wake the monitor.
        this.#nextReconcile.set(type, now + Math.min(timing.loopIntervalMs, this.watchAfterMs));
        await this.#reconcileType(type, counts);
      }
      // One index probe per type and pass (a task claimed later is watched no sooner than the watch
      // threshold from now, and the loop never sleeps longer than the liveness bound).
      const inMs = await nextStaleInProgressInMs(db, type, { olderThanMs: this.watchAfterMs });
      if (inMs === undefined) this.#nextStale.delete(type);
      else this.#nextStale.set(type, Math.max(monotonicNow() + inMs + 10, now + minGapMs));
    }
    this.#watchRedis();
    try {
      metrics.inFlight.set((await this.#ctx.scanner.counts()).inFlight);
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
   * emitter (a longer worker bound: honoured by #workerWaitMs while the worker is alive; a shorter
   * one: dead tasks found late by reconciliation). Read-only; never throws.
   */
  async #checkWorkerBounds(): Promise<void> {
    const { config } = this.#ctx.deps;
    try {
      const page = await this.#ctx.scanner.list({ limit: 200 });
      for (const t of page.tasks) {
        const d = t.details;
        if (d === undefined || this.#boundsReported.has(d.emitterId)) continue;
        if (d.timeoutMs !== config.monitor.livenessTimeoutMs) {
          const workerId = d.workerId ?? d.attributes?.['workerId'] ?? d.emitterId;
          const longer = d.timeoutMs > config.monitor.livenessTimeoutMs;
          this.#ctx.log.error(
            {
              emitterId: d.emitterId,
              workerId,
              member: t.taskId,
              workerLivenessTimeoutMs: d.timeoutMs,
              livenessTimeoutMs: config.monitor.livenessTimeoutMs,
              advice: EVENT_CATALOGUE.liveness_bounds_mismatch.advice,
            },
            `a worker's liveness bound is ${longer ? 'longer' : 'shorter'} than monitor.livenessTimeoutMs (docs/runbook.md, Liveness and progress)`,
          );
          // Reported once the WARNING is queued (or another monitor's is): a failed insert is tried
          // again at the next check.
          if (await this.#alertBounds(String(workerId), d.timeoutMs, longer))
            this.#boundsReported.add(d.emitterId);
        }
      }
    } catch (e) {
      this.#ctx.log.debug(
        { err: classifyError(e).message },
        'cannot sample in-flight tasks for the bounds check',
      );
    }
  }

  /**
   * One `liveness_bounds_mismatch` WARNING per worker and dedup window (10 min when dedup is off), by
   * however many monitors: the outbox is asked (`notifiedWithin`, dedup key
   * `liveness_bounds_mismatch:<worker>`). A log line alone is read by nobody at 3 a.m. True once it is
   * queued (by this monitor or another); false when the outbox could not be reached. Never throws.
   */
  async #alertBounds(workerId: string, workerMs: number, longer: boolean): Promise<boolean> {
    const { config, db } = this.#ctx.deps;
    const windowMs = alertWindowMs(config);
    const dedupKey = `liveness_bounds_mismatch:${workerId}`;
    const ours = config.monitor.livenessTimeoutMs;
    try {
      if (await notifiedWithin(db, dedupKey, windowMs)) return true;
      await createPgOutboxStore(db).enqueue({
        level: eventLevel('liveness_bounds_mismatch'),
        eventKind: 'liveness_bounds_mismatch',
        subject: `worker ${workerId}: liveness bound ${formatDuration(workerMs)}, the monitor's ${formatDuration(ours)}`,
        body: `What: worker ${workerId} tracks its tasks with a liveness bound of ${formatDuration(workerMs)} (heartbeat.livenessTimeoutMs) and this monitor expects ${formatDuration(ours)} (monitor.livenessTimeoutMs): ${longer ? "its tasks' missing heartbeats wait out the worker's bound while it is alive" : 'its dead tasks are found later than it expects'}.`,
        context: { workerId, workerLivenessTimeoutMs: workerMs, livenessTimeoutMs: ours },
        dedupKey,
      });
      return true;
    } catch (e) {
      this.#ctx.log.warn(
        { workerId, err: classifyError(e).message },
        'cannot queue the liveness-bounds notification; trying again at the next check',
      );
      return false;
    }
  }

  /** Reads the workers' health records: alive or not, their advertised bounds, when they expire. Never throws. */
  async #readWorkers(): Promise<void> {
    const { config, redis } = this.#ctx.deps;
    const now = monotonicNow();
    this.#workersReadAt = now;
    try {
      const { services, corrupt } = await new ServiceHealthReader({
        redis,
        keyPrefix: config.keyPrefix,
      }).list();
      this.#workersAlive.clear();
      this.#workerExpiresAt.clear();
      this.#registrySize = services.length + corrupt.length;
      const listed = new Set<string>();
      for (const s of services) {
        if (s.serviceType !== 'worker') continue;
        listed.add(s.serviceName);
        this.#workerGoneSince.delete(s.serviceName);
        this.#workersAlive.set(s.serviceName, s.alive);
        if (s.alive && s.expiresInMs !== undefined)
          this.#workerExpiresAt.set(s.serviceName, now + s.expiresInMs);
        const bound = s.info?.['livenessTimeoutMs'];
        if (typeof bound === 'number' && Number.isFinite(bound) && bound > 0)
          this.#workerLiveness.set(s.serviceName, bound);
        const since = s.info?.['claimsSince'];
        if (s.alive && typeof since === 'number' && Number.isFinite(since))
          this.#workerClaimsSince.set(s.serviceName, since);
      }
      for (const id of this.#workerLiveness.keys())
        if (!listed.has(id) && !this.#workerGoneSince.has(id)) {
          this.#workerGoneSince.set(id, now);
          this.#dataLostAt = now;
        }
    } catch (e) {
      // The expiry times are stale now: a row waiting on one would be looked at again in every pass
      // (adversary: passes every 20 ms while reads failed). The bounds and states read before stay.
      this.#workerExpiresAt.clear();
      this.#ctx.log.debug({ err: classifyError(e).message }, "cannot read the workers' health records");
    }
  }

  /**
   * How long a row of worker `workerId` may miss its heartbeat member (beyond this monitor's own
   * wait), counted from when this monitor first saw it missing: the whole liveness bound the worker
   * advertises in its health record while that record says it is alive (or while this monitor knows
   * its bound but the record is gone: Redis lost it, and the worker writes it again within one of its
   * beats; after a loss the monitor cannot tell how long ago the worker last beat, so no part of the
   * bound is taken as spent), capped at `capMs`; 0 once the record says dead or stopped (its health
   * key's TTL is that bound: the worker is silent) or when no bound is known. `expiresAt`: when the
   * record runs out, if it is alive, so the row is looked at again then rather than a whole bound
   * later (a worker that died right after a claim: recovered about one bound after its last sign of
   * life, not 15-16 s at the shipped 12 s, issue 13 F3). The records are read again once a beat
   * interval has passed, or once the record this row waits on should have expired. 0 too for a row
   * claimed before the record's process began to claim (`claimsSince`): its claimant is a process
   * before it under the same worker id, dead (issue 13 R2: a container restarted in its pod kept
   * its predecessor's never-registered task waiting ~17 s), unless this monitor saw the record lost
   * (Redis lost data): then one bound from that loss, as the new process could not see a live
   * holder. `goneSince`: when the record was first seen gone, the earliest the wait may run from.
   * Never throws.
   */
  async #workerWait(
    workerId: string | null,
    claimedAt: Date | null,
    capMs: number,
  ): Promise<{ waitMs: number; expiresAt?: number; goneSince?: number }> {
    if (workerId === null) return { waitMs: 0 };
    const now = monotonicNow();
    const expiresAt = this.#workerExpiresAt.get(workerId);
    if (
      now - this.#workersReadAt >= this.#ctx.deps.config.monitor.heartbeatIntervalMs ||
      (expiresAt !== undefined && now >= expiresAt)
    )
      await this.#readWorkers();
    if (this.#workersAlive.get(workerId) === false) return { waitMs: 0 };
    const since = this.#workerClaimsSince.get(workerId);
    const bound = this.#workerLiveness.get(workerId);
    if (since !== undefined && claimedAt !== null && claimedAt.getTime() < since) {
      // After Redis lost the record, a process that took the id could not see a live (frozen)
      // holder of it: the holder's rows wait one bound from the loss (issue 13 adversary: a twin
      // started after a flush had a frozen worker's task recovered 9.9 s after its last beat).
      const lostAt = this.#dataLostAt;
      return lostAt === undefined || bound === undefined
        ? { waitMs: 0 }
        : { waitMs: Math.min(bound, capMs), goneSince: lostAt };
    }
    // No bound known (this monitor started after Redis lost the records, or the worker published
    // none): this monitor's whole liveness bound, not the rest of it after the watch threshold — it
    // cannot tell how long ago the worker last beat (adversary: a monitor restarted after a flush
    // recovered a live worker's task 1.5 s after its last beat at 1 s/3 s).
    if (bound === undefined)
      return {
        waitMs: this.#workersAlive.has(workerId) ? 0 : this.#ctx.deps.config.monitor.livenessTimeoutMs,
      };
    const at = this.#workerExpiresAt.get(workerId);
    const gone = this.#workerGoneSince.get(workerId);
    return {
      waitMs: Math.min(bound, capMs),
      ...(at !== undefined && { expiresAt: at }),
      ...(gone !== undefined && { goneSince: gone }),
    };
  }

  /**
   * Rows of `type` in progress with no sign of life for one beat interval + margin are watched; one
   * whose heartbeat member is missing is recovered once this monitor has seen it missing for
   * max(liveness − that, that), or, while its worker is alive, for the liveness bound that worker
   * advertises in its health record when longer (a worker beating less often registers its tasks
   * later; see #workerWaitMs). A live process re-registers a member Redis lost on its next beat,
   * well within that, so a Redis flush never recovers a live task; a task that died before its first
   * beat is recovered about one liveness bound after its claim.
   */
  async #reconcileType(type: OperationType, counts: PassCounts): Promise<void> {
    const { config, db, metrics } = this.#ctx.deps;
    const { progressTimeoutMs } = monitorTimingFor(config, type);
    // Page past stale rows whose tasks still beat (live tasks that write no progress to the
    // database), so a dead one behind them is not left waiting; bounded per pass.
    let afterId: string | undefined;
    const seen = new Set<string>();
    let complete = false;
    for (let page = 0; page < MAX_RECONCILE_PAGES && !this.#ctx.closed(); page++) {
      const stale = await staleInProgress(db, type, {
        olderThanMs: this.watchAfterMs,
        limit: config.monitor.batchSize,
        ...(afterId !== undefined && { afterId }),
      });
      if (stale.length === 0) {
        complete = true;
        break;
      }
      let scores: (string | null)[] | undefined;
      try {
        scores = await this.#ctx.deps.redis.zmscore(
          this.#ctx.scanner.keys.deadlines,
          ...stale.map((row) => `${type}:${row.id}:${row.attempt}`),
        );
      } catch (e) {
        this.#ctx.log.warn(
          { err: classifyError(e).message },
          'cannot check heartbeats; reconciling by the database alone (rows silent for their progress timeout)',
        );
      }
      const now = monotonicNow();
      // Redis unreachable: rows' silence is measured by the database's clock, which set lastSeenAt.
      const dbNow = scores === undefined ? await databaseNow(db) : 0;
      for (const [i, row] of stale.entries()) {
        if (this.#ctx.closed()) return;
        const member = `${type}:${row.id}:${row.attempt}`;
        seen.add(member);
        const failing = this.#ctx.failing.byMember.get(member);
        if (scores?.[i] != null) {
          this.#absentSince.delete(member);
          if (failing?.reconcileType !== undefined) this.#ctx.failing.byMember.delete(member);
          continue;
        }
        if (failing?.reconcileType !== undefined) {
          // Its recovery failed before: retried on its own backoff, not after another absence wait.
          failing.seenInPass = this.#ctx.failing.pass;
          if (failing.retryAt > now) continue;
        } else if (scores === undefined) {
          // Redis unreachable: a live task writes its database sign of life every few seconds, so
          // only a row silent for its whole progress timeout is surely dead.
          const silentMs = row.lastSeenAt === null ? Infinity : dbNow - row.lastSeenAt.getTime();
          if (silentMs < progressTimeoutMs) continue;
        } else {
          // A worker beating slower than this monitor assumes registers (and re-registers) its
          // tasks later: its rows wait out that worker's own advertised liveness bound.
          // (Capped by the type's progress timeout: a bogus advertised bound cannot keep a dead
          // worker's task forever.)
          const worker = await this.#workerWait(row.claimedBy, row.startedAt, progressTimeoutMs);
          const since = this.#absentSince.get(member)?.at ?? now;
          // The worker's wait runs from its last possible beat: no later than when this member was
          // first seen missing (a beat since would have re-registered it), nor than when its record
          // was first seen gone after Redis lost data (a beat since would have written it again).
          const from = Math.min(since, worker.goneSince ?? since);
          const ownDueAt = since + this.#absentForMs;
          const dueAt = Math.max(ownDueAt, from + worker.waitMs);
          const checkAt =
            worker.expiresAt === undefined || dueAt === ownDueAt
              ? dueAt
              : Math.max(Math.min(dueAt, worker.expiresAt + 50), ownDueAt);
          // Never a time already past while the wait runs (a stale expiry): at most two passes a second.
          const next = now < dueAt && checkAt <= now ? now + 500 : checkAt;
          this.#absentSince.set(member, { type, at: since, waitMs: dueAt - since, checkAt: next });
          if (now < dueAt) continue;
        }
        this.#absentSince.delete(member);
        const ref = { type, id: row.id, attempt: row.attempt };
        let outcome: Awaited<ReturnType<typeof applyStallRecovery>>;
        try {
          outcome = await applyStallRecovery(this.#ctx.deps.recovery, {
            ref,
            reason: 'no_heartbeat',
            detectedBy: this.#ctx.deps.monitorId,
          });
        } catch (e) {
          // One row's failing recovery (a database error, a custom handler) must not fail the
          // pass: a failed pass holds back every expired member for a liveness bound. Retried with
          // backoff and alerted like a member found by the scans.
          metrics.recoveryFailures.inc();
          if (this.#ctx.closed()) return;
          await this.#ctx.failing.failed(member, ref, classifyError(e).message, type);
          continue;
        }
        if (outcome.kind === 'busy') {
          // Its row is held by another transaction: skipped, not waited for; retried shortly.
          await skipBusy(this.#ctx, member, ref, type);
          continue;
        }
        this.#ctx.failing.byMember.delete(member);
        metrics.recoveries.inc({ outcome: outcome.kind, operation_type: type });
        if (outcome.kind !== 'not_in_progress') {
          counts.reconciled++;
          metrics.stallsDetected.inc({ reason: 'no_heartbeat' });
          await cleanupPartials(this.#ctx, { type, id: row.id, attempt: row.attempt });
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
      for (const [member, f] of this.#ctx.failing.byMember)
        if (f.reconcileType === type && !seen.has(member)) this.#ctx.failing.byMember.delete(member);
    }
    // Reported once per loop interval (reconciliation itself runs more often).
    const checkAt = this.#nextScheduledCheck.get(type) ?? 0;
    if (monotonicNow() < checkAt) return;
    this.#nextScheduledCheck.set(type, monotonicNow() + monitorTimingFor(config, type).loopIntervalMs);
    const scheduled = await staleScheduled(db, type, {
      olderThanMs: config.monitor.scheduleTimeoutMs,
      limit: config.monitor.batchSize,
    });
    metrics.staleScheduled.set({ operation_type: type }, scheduled.length);
    if (scheduled.length > 0) {
      counts.staleScheduled += scheduled.length;
      this.#ctx.log.warn(
        {
          operationType: type,
          count: scheduled.length,
          examples: scheduled.slice(0, 5).map((s) => `${type}:${s.id}:${s.attempt}`),
        },
        "scheduled operations not claimed within the schedule timeout; the workers' dispatcher re-creates vanished jobs (is a worker serving their queue?)",
      );
    }
  }
}

/** `uptime_in_seconds` of an INFO server reply, in ms; Infinity when absent (then no grace for it). */
function redisUptimeMs(info: unknown): number {
  const match = typeof info === 'string' ? /^uptime_in_seconds:(\d+)/m.exec(info) : null;
  return match ? Number(match[1]) * 1000 : Infinity;
}
