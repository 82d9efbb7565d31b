// Over 300 lines: one emitter's beat loop, its task table and its loss handling share one state.
// Worker side: one emitter per process beats for all its in-flight tasks in one round trip per
// interval. Deadlines are computed inside Redis from TIME; this process's clock is never consulted.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { classifyError, ConfigurationError } from '@ccat/errors';
import type { Logger } from 'pino';
import { HeartbeatClosedError, HeartbeatLostError } from './errors.js';
import type {
  BeatReport,
  EmitterStats,
  HeartbeatEmitterOptions,
  LostReason,
  LostTask,
  TrackedTask,
  TrackOptions,
} from './emitter-types.js';
import {
  decodeReplies,
  encodeOps,
  removeOp,
  type BeatHealth,
  type BeatOp,
  type BeatReply,
} from './internal/beat-ops.js';
import { EmitterHooks } from './internal/emitter-hooks.js';
import { attachToBeats, healthBeatArgs, healthReplied } from './internal/health-link.js';
import { keysFor } from './internal/keys-for.js';
import { parseOptions } from './internal/parse-options.js';
import { runScriptsPipelined } from './internal/scripts.js';
import { silentLogger } from './internal/silent-logger.js';
import { TickBatcher } from './internal/tick-batcher.js';
import { withTimeout } from './internal/timeout.js';
import { encodeDetails, encodeProgress, resolveTrack } from './internal/track-input.js';
import type { HeartbeatKeys } from './keys.js';
import { heartbeatOptionsSchema } from './options.js';
import type { ServiceHealthReporter } from './health-reporter.js';
import type { RedisClient } from './redis-client.js';
import { assertTaskId } from './task-id.js';
import type { ProgressValue } from './task-info.js';
import type { z } from 'zod';

interface Entry {
  readonly taskId: string;
  readonly timeoutMs: number;
  readonly progressTimeoutMs: number;
  readonly details: string;
  progressJson: string;
  progressDirty: boolean;
  registered: boolean;
  /** performance.now() at track: a registration that could not be sent within the timeout is late. */
  readonly trackedAt: number;
  readonly controller: AbortController;
  readonly handle: TrackedTask;
}

/** The worker-side heartbeat resource: `start()`, `track`, `progress`, `untrack`, `close()`. */
export class HeartbeatEmitter implements AsyncDisposable {
  readonly emitterId: string;
  readonly #redis: RedisClient;
  readonly #log: Logger;
  readonly #opts: z.output<typeof heartbeatOptionsSchema>;
  readonly #keys: HeartbeatKeys;
  readonly #detailsBase: Record<string, unknown>;
  readonly #hooks: EmitterHooks;
  readonly #entries = new Map<string, Entry>();
  /** Removals that failed; retried with the next beat. Value: a sequence number, see #beatOnce. */
  readonly #pendingDeletes = new Map<string, number>();
  /**
   * Ids whose registration was sent and whose removal has not been confirmed: a member may exist.
   * An untrack of any other id has nothing to remove. Value: a sequence number, as for deletes.
   */
  readonly #written = new Map<string, number>();
  #writeSeq = 0;
  readonly #inflight = new Set<Promise<unknown>>();
  #deleteSeq = 0;
  readonly #registrations = new TickBatcher<Entry>((entries) => this.#flushRegistrations(entries));
  /** Removals of one tick share a round trip too (a busy worker finishes many tasks at once). */
  readonly #removals = new TickBatcher<string>((ids) => this.#flushRemovals(ids));
  #beatChain: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #failures = 0;
  #lastOkAt = performance.now();
  #stats = { beats: 0, beatFailures: 0, lost: 0, lastRttMs: undefined as number | undefined };
  /** The health record refreshed inside each script call (option `health`): its keys and chain key. */
  readonly #health: { reporter: ServiceHealthReporter; keys: readonly string[] } | undefined;
  #chainSeq = 0;

  constructor(options: HeartbeatEmitterOptions) {
    const { redis, logger, emitterId, workerId, host, pid, onLost, onBeat, onError, health, ...config } =
      options;
    this.#opts = parseOptions(heartbeatOptionsSchema, config, 'heartbeat');
    this.#redis = redis;
    this.#keys = keysFor(this.#opts.keyPrefix, this.#opts.hashTag);
    const h = host ?? hostname();
    this.emitterId = assertTaskId(emitterId ?? `${h}:${randomBytes(4).toString('hex')}`, 'emitter id');
    this.#log = (logger ?? silentLogger()).child({
      component: 'heartbeat-emitter',
      emitterId: this.emitterId,
    });
    this.#detailsBase = { emitterId: this.emitterId, workerId, host: h, pid };
    this.#hooks = new EmitterHooks(this.#log, {
      ...(onLost && { onLost }),
      ...(onBeat && { onBeat }),
      ...(onError && { onError }),
    });
    if (health !== undefined) {
      const [healthKey, servicesKey] = health[attachToBeats]();
      // One script writes both: on a Redis Cluster every key must carry the same hash tag.
      if (!healthKey.startsWith(this.#keys.namespace))
        throw new ConfigurationError(
          `heartbeat: the health record ${healthKey} is not in this emitter's keyspace ${this.#keys.namespace}; give both the same keyPrefix and hashTag`,
        );
      const chainKey = `${this.#keys.namespace}hb:chain:${this.emitterId}`;
      this.#health = { reporter: health, keys: [healthKey, servicesKey, chainKey] };
    }
  }

  /** Arms the beat timer. Idempotent. */
  start(): Promise<void> {
    if (this.#closed) return Promise.reject(new HeartbeatClosedError('heartbeat emitter is closed'));
    if (!this.#started) {
      this.#started = true;
      this.#schedule(this.#opts.intervalMs);
    }
    return Promise.resolve();
  }

  /**
   * Registers a task (one round trip, coalesced with other `track` calls of the same tick) and beats
   * for it from then on. Calling it again for the same id re-registers (new deadline, progress clock
   * reset, new handle). Rejects with InvalidTaskIdError/ValidationError for bad input,
   * HeartbeatClosedError after close, and the classified Redis error when the registration failed
   * (the task is then not tracked). With `registerOnNextBeat` (and not `now`) it resolves at once and
   * the registration rides on the next beat (a beat that fails carries it again with the one after).
   */
  async track(taskId: string, options: TrackOptions = {}): Promise<TrackedTask> {
    assertTaskId(taskId);
    if (this.#closed) throw new HeartbeatClosedError(`cannot track ${taskId}: heartbeat emitter is closed`);
    const t = resolveTrack(options, this.#opts);
    const details = encodeDetails({
      ...this.#detailsBase,
      queue: t.queue,
      timeoutMs: t.timeoutMs,
      progressTimeoutMs: t.progressTimeoutMs === 0 ? undefined : t.progressTimeoutMs,
      attributes: t.attributes,
    });
    const controller = new AbortController();
    const entry: Entry = {
      taskId,
      timeoutMs: t.timeoutMs,
      progressTimeoutMs: t.progressTimeoutMs,
      details,
      progressJson: t.progressJson,
      progressDirty: false,
      registered: false,
      trackedAt: performance.now(),
      controller,
      handle: {
        taskId,
        signal: controller.signal,
        progress: (value) => this.#entries.get(taskId) === entry && this.progress(taskId, value),
        untrack: () => {
          const live = this.#entries.get(taskId);
          return live !== undefined && live !== entry ? Promise.resolve() : this.untrack(taskId);
        },
      },
    };
    this.#pendingDeletes.delete(taskId);
    this.#entries.set(taskId, entry);
    if (this.#opts.registerOnNextBeat && options.now !== true) return entry.handle;
    try {
      await this.#register(entry);
    } catch (e) {
      const error = classifyError(e);
      if (this.#opts.registerOnNextBeat && this.#entries.get(taskId) === entry) {
        // Not dropped: a task whose lost member could not be registered at once (Redis unreachable,
        // or a link slower than commandTimeoutMs, where it may still run) would otherwise be beaten
        // by nobody and recovered while it runs (issue 13 adversary). It rides on the next beat.
        this.#log.warn({ err: error, taskId }, 'heartbeat registration failed; it rides on the next beat');
        return entry.handle;
      }
      if (this.#entries.get(taskId) === entry) this.#entries.delete(taskId);
      throw error;
    }
    return entry.handle;
  }

  /** Records progress (any JSON value, ≤ 1 KiB); sent with the next beat. False when not tracked. */
  progress(taskId: string, value: ProgressValue): boolean {
    const entry = this.#entries.get(taskId);
    if (entry === undefined) return false;
    const json = encodeProgress(value);
    if (json !== entry.progressJson) {
      entry.progressJson = json;
      entry.progressDirty = true;
    }
    return true;
  }

  /**
   * Stops beating for a task and removes its member, details and progress now (or with the next
   * beat, with `removeOnNextBeat`). Never rejects for a
   * Redis failure: the removal is then retried with the next beat (and once more at close).
   */
  async untrack(taskId: string): Promise<void> {
    assertTaskId(taskId);
    const entry = this.#entries.get(taskId);
    this.#entries.delete(taskId);
    // No registration of this id was ever sent (it ended before its beat or flush): nothing to remove.
    if (entry !== undefined && !this.#written.has(taskId)) return;
    if (this.#opts.removeOnNextBeat && !this.#closed) {
      this.#pendingDeletes.set(taskId, ++this.#deleteSeq);
      return;
    }
    try {
      await this.#hold(this.#removals.add(taskId));
    } catch (e) {
      if (!this.#entries.has(taskId)) this.#pendingDeletes.set(taskId, ++this.#deleteSeq);
      this.#log.warn(
        { err: classifyError(e), taskId },
        'heartbeat removal failed; retried with the next beat',
      );
    }
  }

  /** Ids of the tasks this emitter beats for (registered or registering). */
  trackedIds(): string[] {
    return [...this.#entries.keys()];
  }

  stats(): EmitterStats {
    return { ...this.#stats, tracked: this.#entries.size, consecutiveFailures: this.#failures };
  }

  /**
   * One beat now, serialized with the timer's beats. Resolves with what it found; rejects with the
   * classified error after logging it and calling `onError`.
   */
  beatNow(): Promise<BeatReport> {
    const run = this.#beatChain.then(() => this.#beatRecorded());
    this.#beatChain = run.catch(() => undefined);
    return run;
  }

  /** Stops beating. Members not untracked stay and expire (the monitor recovers them). Never rejects. */
  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Every call these wait for is bounded by commandTimeoutMs.
    await Promise.allSettled([...this.#inflight, this.#beatChain]);
    if (this.#pendingDeletes.size > 0) {
      const ids = [...this.#pendingDeletes.keys()];
      const ops = ids.map(removeOp);
      try {
        const written = this.#writtenNow(ids);
        await this.#send(ops, 'heartbeat close');
        this.#pendingDeletes.clear();
        this.#removed(written);
      } catch (e) {
        this.#log.warn(
          { err: classifyError(e), pending: ops.length },
          'heartbeat removals still failing at close; those members will expire',
        );
      }
    }
    this.#log.debug({ tracked: this.#entries.size }, 'heartbeat emitter closed');
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#tick();
    }, delayMs);
    // The tasks keep the process alive, not their heartbeat.
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    const started = performance.now();
    // beatNow logs and reports failures; the timer only has to keep going.
    await this.beatNow().catch(() => undefined);
    this.#schedule(Math.max(0, this.#opts.intervalMs - (performance.now() - started)));
  }

  /** Adds a promise to the set close() waits for. */
  #hold<T>(p: Promise<T>): Promise<T> {
    this.#inflight.add(p);
    void p.finally(() => this.#inflight.delete(p)).catch(() => undefined);
    return p;
  }

  /** Registrations made in the same tick share one script call. */
  async #flushRemovals(ids: readonly string[]): Promise<void> {
    // A task tracked again since its untrack keeps its new member.
    const gone = [...new Set(ids)].filter((id) => !this.#entries.has(id));
    if (gone.length === 0) return;
    const written = this.#writtenNow(gone);
    await this.#send(gone.map(removeOp), 'heartbeat untrack');
    this.#removed(written);
  }

  #register(entry: Entry): Promise<void> {
    return this.#hold(this.#registrations.add(entry));
  }

  async #flushRegistrations(entries: readonly Entry[]): Promise<void> {
    const current = entries.filter((e) => this.#entries.get(e.taskId) === e);
    if (current.length === 0) return;
    for (const e of current) this.#written.set(e.taskId, ++this.#writeSeq);
    const ops = current.map((e): BeatOp => ({
      op: 'r',
      id: e.taskId,
      timeoutMs: e.timeoutMs,
      progressTimeoutMs: e.progressTimeoutMs,
      progress: e.progressJson,
      details: e.details,
    }));
    const sent = current.map((e) => e.progressJson);
    try {
      await this.#send(ops, 'heartbeat registration');
    } catch (e) {
      // Classified once for the whole batch; every waiting `track` rethrows this same error.
      throw classifyError(e);
    }
    current.forEach((e, i) => {
      e.registered = true;
      if (e.progressJson !== sent[i]) e.progressDirty = true;
    });
  }

  /**
   * One script call per chunk of ops, pipelined. With a health record (option `health`), every call
   * also refreshes it, after its writes and in the same script, so the record never vouches for a
   * registration that has not run.
   */
  async #send(ops: readonly BeatOp[], what: string, onLate?: (reply: BeatReply) => void): Promise<BeatReply> {
    const keys = [
      this.#keys.deadlines,
      this.#keys.progressDeadlines,
      this.#keys.details,
      this.#keys.progress,
    ];
    const args = this.#health?.reporter[healthBeatArgs]();
    let health: BeatHealth | undefined;
    if (args !== undefined) {
      keys.push(...this.#health!.keys);
      health = { token: `${this.emitterId}:${++this.#chainSeq}`, args };
    }
    const argLists = encodeOps(ops, this.#opts.maxTasksPerScript, health);
    const running = runScriptsPipelined(this.#redis, 'beat', keys, argLists);
    const decode = (replies: unknown[]): BeatReply => {
      const reply = decodeReplies(replies);
      if (reply.health !== undefined) this.#health!.reporter[healthReplied](reply.health, reply.now);
      return reply;
    };
    try {
      return decode(await withTimeout(running, this.#opts.commandTimeoutMs, what));
    } catch (e) {
      // Timed out here, but it may still run in Redis (a link slower than commandTimeoutMs): what it
      // answers then is still heard (a member it found missing is reported, and registered again).
      if (onLate !== undefined)
        void running.then((replies) => onLate(decode(replies))).catch(() => undefined);
      throw e;
    }
  }

  async #beatRecorded(): Promise<BeatReport> {
    try {
      const report = await this.#hold(this.#beatOnce());
      if (report.serverTime !== undefined) {
        if (this.#failures > 0) {
          this.#log.info(
            { failedBeats: this.#failures, withoutBeatMs: Math.round(performance.now() - this.#lastOkAt) },
            'heartbeat restored',
          );
        }
        this.#failures = 0;
        this.#lastOkAt = performance.now();
        this.#stats.beats++;
        this.#stats.lastRttMs = report.rttMs;
      }
      this.#hooks.beat(report);
      return report;
    } catch (e) {
      const error = classifyError(e);
      this.#failures++;
      this.#stats.beatFailures++;
      this.#log.warn({ err: error, consecutiveFailures: this.#failures }, 'heartbeat beat failed');
      this.#hooks.error(error);
      throw error;
    }
  }

  async #beatOnce(): Promise<BeatReport> {
    const failedBefore = this.#failures;
    const beating: Entry[] = [];
    const joining: Entry[] = [];
    const late: Entry[] = [];
    const now = performance.now();
    for (const e of this.#entries.values()) {
      if (e.registered) beating.push(e);
      // Registrations riding on this beat (registerOnNextBeat); beats run one at a time. One that
      // could not be sent within its timeout (beats failing) may have been recovered meanwhile by
      // the database reconciliation: report it lost, so its owner checks before registering again.
      else if (this.#opts.registerOnNextBeat) (now - e.trackedAt > e.timeoutMs ? late : joining).push(e);
    }
    const lateLost = late.map((e) => {
      this.#entries.delete(e.taskId);
      return this.#reportLost(e, 'expired', undefined);
    });
    const deletes = [...this.#pendingDeletes];
    const refreshing = this.#health?.reporter[healthBeatArgs]() !== undefined;
    if (beating.length === 0 && joining.length === 0 && deletes.length === 0 && !refreshing) {
      return {
        serverTime: undefined,
        rttMs: 0,
        beaten: 0,
        registered: 0,
        removed: 0,
        lost: lateLost,
        failedBefore,
      };
    }
    const sentProgress = beating.map((e) => (e.progressDirty ? e.progressJson : ''));
    const ops: BeatOp[] = beating.map((e, i) => ({
      op: 'b',
      id: e.taskId,
      timeoutMs: e.timeoutMs,
      progressTimeoutMs: e.progressTimeoutMs,
      progress: sentProgress[i]!,
      details: '',
    }));
    const joinedProgress = joining.map((e) => e.progressJson);
    joining.forEach((e, i) => {
      this.#written.set(e.taskId, ++this.#writeSeq);
      ops.push({
        op: 'r',
        id: e.taskId,
        timeoutMs: e.timeoutMs,
        progressTimeoutMs: e.progressTimeoutMs,
        progress: joinedProgress[i]!,
        details: e.details,
      });
    });
    for (const [id] of deletes) ops.push(removeOp(id));
    const written = this.#writtenNow(deletes.map(([id]) => id));
    const started = performance.now();
    // A reply that comes after the timeout is judged all the same (see #send): a slow link's beats
    // still run in Redis, and only their answers say what Redis lost.
    const onLate = (late: BeatReply) => {
      joining.forEach((e) => {
        if (this.#entries.get(e.taskId) === e) e.registered = true;
      });
      this.#judge(beating, sentProgress, late);
    };
    const reply = await this.#send(ops, 'heartbeat beat', onLate);
    const rttMs = performance.now() - started;
    // A removal queued again after this beat was sent has a newer sequence number: keep it.
    for (const [id, seq] of deletes)
      if (this.#pendingDeletes.get(id) === seq) this.#pendingDeletes.delete(id);
    this.#removed(written);
    joining.forEach((e, i) => {
      e.registered = true;
      if (e.progressJson !== joinedProgress[i]) e.progressDirty = true;
    });
    return {
      serverTime: reply.now,
      rttMs,
      beaten: beating.length,
      registered: joining.length,
      removed: deletes.length,
      lost: [...lateLost, ...this.#judge(beating, sentProgress, reply)],
      failedBefore,
    };
  }

  /** The tasks a beat's reply found missing or expired: each reported lost once (and no longer beaten). */
  #judge(beating: readonly Entry[], sentProgress: readonly string[], reply: BeatReply): LostTask[] {
    const lost: LostTask[] = [];
    beating.forEach((entry, i) => {
      // A newer registration of the same id (or an untrack) since this beat was sent: not ours to judge.
      if (this.#entries.get(entry.taskId) !== entry) return;
      const reason = reply.problems.get(entry.taskId);
      if (reason === undefined) {
        if (sentProgress[i] !== '' && entry.progressJson === sentProgress[i]) entry.progressDirty = false;
        return;
      }
      this.#entries.delete(entry.taskId);
      // A missing member is gone: nothing left to remove for this id.
      if (reason === 'missing') this.#written.delete(entry.taskId);
      lost.push(this.#reportLost(entry, reason, reply.now));
    });
    return lost;
  }

  /** The write sequence of each id, captured before a removal is sent. */
  #writtenNow(ids: readonly string[]): Map<string, number | undefined> {
    return new Map(ids.map((id) => [id, this.#written.get(id)]));
  }

  /** After a removal succeeded: its ids have no member, unless registered again since it was sent. */
  #removed(written: ReadonlyMap<string, number | undefined>): void {
    for (const [id, seq] of written) if (this.#written.get(id) === seq) this.#written.delete(id);
    // Ids lost as expired and never untracked stay here; keep the map bounded.
    if (this.#written.size > this.#entries.size + this.#pendingDeletes.size + 10_000) {
      for (const id of this.#written.keys())
        if (!this.#entries.has(id) && !this.#pendingDeletes.has(id)) this.#written.delete(id);
    }
  }

  #reportLost(entry: Entry, reason: LostReason, serverTime: number | undefined): LostTask {
    const error = new HeartbeatLostError(
      reason === 'missing'
        ? `heartbeat of ${entry.taskId} is no longer in Redis (recovered elsewhere, or Redis lost data)`
        : `heartbeat of ${entry.taskId} was past its deadline (the monitor may be recovering it)`,
      { context: { taskId: entry.taskId, reason, emitterId: this.emitterId } },
    );
    this.#stats.lost++;
    this.#log.warn({ taskId: entry.taskId, reason }, 'heartbeat lost');
    entry.controller.abort(error);
    const lost: LostTask = { taskId: entry.taskId, reason, serverTime, error };
    this.#hooks.lost(lost);
    return lost;
  }
}
