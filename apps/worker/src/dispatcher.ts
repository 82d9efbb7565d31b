// The dispatcher: due pending rows → scheduled + a job with the deterministic id; scheduled rows whose
// job vanished (Redis flushed) → the same job again; completed raw data packages → transfer bundles.
// Safe with several processes running it, by design: rows are taken with SKIP LOCKED, job ids are
// deterministic (BullMQ keeps one job per id), and a duplicate job's claim is refused.
import {
  dispatchDue,
  OPERATION_TYPES,
  staleScheduled,
  touchScheduled,
  type Database,
  type OperationRef,
  type OperationType,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { Queue } from 'bullmq';
import type { RedisConnection } from '@ccat/service';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { bullErrorListener, ConnectionFaultLog } from '@ccat/service';
import type { WorkerMetrics } from './metrics.js';
import { bundleRawPackages } from './pipeline.js';
import { jobId, queuesFor, type JobPayload } from './queues.js';

export interface DispatcherOptions {
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly scheduleTimeoutMs: number;
  readonly bundleSize: number;
  readonly bundleMaxWaitMs: number;
  readonly operationTypes?: readonly OperationType[];
}

export interface DispatcherDeps {
  readonly db: Kysely<Database>;
  /** A connection for the queues (BullMQ needs maxRetriesPerRequest: null). */
  readonly connection: RedisConnection;
  /** BullMQ key prefix. */
  readonly bullPrefix: string;
  readonly logger: Logger;
  readonly metrics?: WorkerMetrics;
  /** Where the queues' connection errors go (one line when an outage starts, one when it ends); default: a log of the dispatcher's own. */
  readonly redisFaults?: ConnectionFaultLog;
}

export interface PassResult {
  readonly dispatched: number;
  readonly redispatched: number;
  readonly bundled: number;
}

/** Jobs live only to be delivered: PostgreSQL keeps the history. A few failed ones stay for inspection. */
const JOB_OPTIONS = { attempts: 1, removeOnComplete: true, removeOnFail: { count: 1000 } } as const;

/**
 * Turns due rows into jobs (DESIGN §4, "BullMQ delivers, PostgreSQL decides"): every `intervalMs`, a
 * pass bundles completed raw data packages, moves due PENDING rows to SCHEDULED and adds their job
 * (deterministic id `${type}:${id}:${attempt}`, BullMQ retries off), and re-adds the job of a
 * SCHEDULED row whose job vanished or finished unclaimed. It owns its BullMQ Queue objects and its
 * timer; it borrows the pool, the Redis connection, the logger and the metrics of `deps`.
 *
 * Lifecycle: `new Dispatcher(deps, options)` → `start()` (or `runOnce()` for one pass) →
 * `close()` (safe twice; also `await using`): waits for the pass in flight, then closes its queues.
 * Guarantees: safe with any number of dispatchers (rows taken with SKIP LOCKED, one job per id, a
 * duplicate job's claim is refused); a failed pass is logged (the same error code at most once per
 * 30 s, so an outage is a few lines, not one per pass) and retried next interval; a Redis flush loses no operation (its jobs are re-created from the rows).
 */
export class Dispatcher implements AsyncDisposable {
  readonly #deps: DispatcherDeps;
  readonly #options: DispatcherOptions;
  readonly #queues = new Map<string, Queue>();
  #timer: NodeJS.Timeout | undefined;
  #pass: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing: Promise<void> | undefined;
  readonly #redisFaults: ConnectionFaultLog;
  /** The last failed pass's error code and when it was logged: an outage is one line, not one per pass. */
  #lastFailure: { code: string; at: number } | undefined;

  constructor(deps: DispatcherDeps, options: DispatcherOptions) {
    this.#deps = deps;
    this.#options = options;
    this.#redisFaults = deps.redisFaults ?? new ConnectionFaultLog(deps.logger, 'Redis');
  }

  /** Logs a failed pass unless the same failure was logged in the last 30 s. */
  #passFailed(e: unknown): void {
    const err = classifyError(e);
    const now = performance.now();
    const last = this.#lastFailure;
    if (last !== undefined && last.code === err.code && now - last.at < 30_000) return;
    this.#lastFailure = { code: err.code, at: now };
    this.#deps.logger.warn(
      { errorCode: err.code, err: err.message },
      'dispatcher pass failed; trying again next interval (the same failure is logged once per 30 s)',
    );
  }

  /**
   * Starts the loop: a first pass at once, then one every `intervalMs` after the previous pass ended
   * (passes never overlap). Does nothing when already started or closed. A pass that throws is
   * logged (see the class comment) and never stops the loop.
   */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return;
    this.#schedule(0);
  }

  #schedule(delay: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#pass = this.runOnce()
        .then(() => (this.#lastFailure = undefined))
        .catch((e: unknown) => this.#passFailed(e))
        .finally(() => this.#schedule(this.#options.intervalMs));
    }, delay);
  }

  /**
   * The BullMQ Queue of one queue name (e.g. `data_transfer_site-a`), created on first use with this
   * dispatcher's connection, key prefix and job options, and owned by it: `close()` closes it.
   * Callers must not close it themselves.
   */
  queue(name: string): Queue {
    let q = this.#queues.get(name);
    if (q === undefined) {
      q = new Queue(name, {
        connection: this.#deps.connection,
        prefix: this.#deps.bullPrefix,
        defaultJobOptions: JOB_OPTIONS,
      });
      q.on('error', bullErrorListener(this.#redisFaults, this.#deps.logger, { queue: name }));
      this.#queues.set(name, q);
    }
    return q;
  }

  async #addJobs(type: OperationType, refs: readonly OperationRef[]): Promise<number> {
    if (refs.length === 0) return 0;
    const names = await queuesFor(
      this.#deps.db,
      type,
      refs.map((r) => r.id),
    );
    const byQueue = new Map<string, OperationRef[]>();
    for (const ref of refs) {
      const name = names.get(ref.id);
      if (name === undefined) continue;
      const batch = byQueue.get(name);
      if (batch === undefined) byQueue.set(name, [ref]);
      else batch.push(ref);
    }
    let added = 0;
    for (const [name, batch] of byQueue) {
      // One round trip per queue. If it fails (Redis down), the rows stay scheduled and the
      // schedule-timeout check re-adds their jobs.
      await this.queue(name).addBulk(
        batch.map((ref) => ({
          name: type,
          data: { operationType: ref.type, operationId: ref.id, attempt: ref.attempt } satisfies JobPayload,
          opts: { ...JOB_OPTIONS, jobId: jobId(ref) },
        })),
      );
      added += batch.length;
    }
    return added;
  }

  /**
   * Whether the job of a scheduled attempt can no longer deliver it: vanished (Redis flushed), or
   * finished without a claim (failed by BullMQ's stall check when its worker died before claiming).
   * A finished job is removed so the same id can be added again.
   */
  async #jobGone(queueName: string, ref: OperationRef): Promise<boolean> {
    const job = await this.queue(queueName).getJob(jobId(ref));
    if (job === undefined) return true;
    const state = await job.getState();
    if (state !== 'failed' && state !== 'completed' && state !== 'unknown') return false;
    await job.remove().catch(() => undefined);
    return true;
  }

  /** One pass over every operation type. */
  async runOnce(): Promise<PassResult> {
    let dispatched = 0;
    let redispatched = 0;
    const bundled = await bundleRawPackages(this.#deps.db, {
      bundleSize: this.#options.bundleSize,
      bundleMaxWaitMs: this.#options.bundleMaxWaitMs,
      flush: true,
    });
    for (const type of this.#options.operationTypes ?? OPERATION_TYPES) {
      if (this.#closed) break;
      const due = await dispatchDue(this.#deps.db, type, { limit: this.#options.batchSize });
      const n = await this.#addJobs(type, due);
      dispatched += n;
      this.#deps.metrics?.dispatched.inc({ operation_type: type }, n);
      const stale = await staleScheduled(this.#deps.db, type, {
        olderThanMs: this.#options.scheduleTimeoutMs,
        limit: this.#options.batchSize,
      });
      if (stale.length === 0) continue;
      const names = await queuesFor(
        this.#deps.db,
        type,
        stale.map((s) => s.id),
      );
      const vanished: OperationRef[] = [];
      for (const s of stale) {
        const ref = { type, id: s.id, attempt: s.attempt };
        const name = names.get(s.id);
        if (name === undefined || !(await this.#jobGone(name, ref))) continue;
        const touched = await touchScheduled(this.#deps.db, ref, {
          event: { context: { queue: name, reason: 'job vanished' } },
        });
        if (touched.applied) vanished.push(ref);
      }
      const r = await this.#addJobs(type, vanished);
      redispatched += r;
      this.#deps.metrics?.redispatched.inc({ operation_type: type }, r);
      if (r > 0)
        this.#deps.logger.warn(
          { operationType: type, count: r },
          're-dispatched scheduled operations whose job vanished',
        );
    }
    if (dispatched + redispatched + bundled > 0)
      this.#deps.logger.debug({ dispatched, redispatched, bundled }, 'dispatcher pass');
    return { dispatched, redispatched, bundled };
  }

  /** Stops the loop, lets the current pass finish, closes the queues. Safe twice. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      clearTimeout(this.#timer);
      await this.#pass.catch(() => undefined);
      const errors: unknown[] = [];
      for (const q of this.#queues.values()) await q.close().catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw new AggregateError(errors, 'closing dispatcher queues failed');
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
