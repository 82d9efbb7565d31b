// Over 300 lines: one job's fenced lifecycle (claim, beat, run, settle, lease loss) shares its state.
// Runs one job: validate the payload, claim the attempt (fenced), heartbeat while it runs, clean
// what earlier attempts left, run the operation, then complete (with its bookkeeping and the next stage, in one
// transaction) or hand the failure to the recovery policy. A task told its heartbeat was lost
// checks its row; if the attempt really moved on it aborts, cleans its partial output, logs
// lease_lost and never marks anything completed.
import {
  readOperation,
  release,
  TransitionBatcher,
  updateProgress,
  type Database,
  type OperationRef,
  type OperationType,
} from '@ccat/db';
import { LeaseLostError, OperationAbortedError, ValidationError, classifyError } from '@ccat/errors';
import { HeartbeatLostError, type HeartbeatEmitter, type TrackedTask } from '@ccat/heartbeat';
import { applyFailure, type RecoveryDeps } from '@ccat/recovery-handlers';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WorkerConfig } from './config.js';
import { timeoutsFor } from './config.js';
import type { FaultInjector } from './faults.js';
import { ProcessGate } from './process-gate.js';
import type { WorkerMetrics } from './metrics.js';
import { OPERATIONS } from './operations/index.js';
import type { Operation, OperationContext } from './operations/types.js';
import { NEXT_STAGE } from './pipeline.js';
import { jobId, jobPayloadSchema } from './queues.js';
import type { Transport } from './transports.js';

export interface TaskRunnerDeps {
  readonly db: Kysely<Database>;
  readonly heartbeat: HeartbeatEmitter;
  readonly recovery: RecoveryDeps;
  readonly logger: Logger;
  readonly workerId: string;
  readonly transport: Transport;
  readonly faults: FaultInjector;
  readonly metrics: WorkerMetrics;
  readonly config: WorkerConfig;
  /** The operations by type (default: the six pipeline operations; benchmarks pass no-ops). */
  readonly operations?: Readonly<Record<OperationType, Operation>>;
  /**
   * Told `true` when a task starts waiting to run alone and `false` when the last such task ended:
   * the worker pauses fetching from its shared queues meanwhile, so few jobs wait at the gate (a job
   * fetched and not yet claimed when the process dies is re-dispatched only once BullMQ's lock on it
   * expires). Must not throw.
   */
  readonly onAlone?: (alone: boolean) => void;
}

export type TaskOutcome =
  | 'completed'
  | 'retry_scheduled'
  | 'permanent_failure'
  | 'lease_lost'
  | 'released'
  | 'claim_refused'
  | 'recovery_deferred'
  /** Stopped (shutdown) while waiting at the process gate, before its claim: the attempt is untouched. */
  | 'not_started';

/** Why a running task was told to stop. */
class ShutdownAbort extends OperationAbortedError {
  static override readonly defaultCode: string = 'SHUTDOWN';
}

interface Heartbeat {
  handle: TrackedTask | undefined;
  /** Set before the final untrack: a registration arriving later takes itself back. */
  finished: boolean;
}

interface Running {
  readonly ref: OperationRef;
  readonly controller: AbortController;
  readonly done: Promise<TaskOutcome>;
}

/**
 * Runs the jobs of one worker process (DESIGN §4): for each, claims its attempt (fenced on
 * `attempt`), tracks it in the heartbeat emitter, runs the operation with an AbortSignal, and ends it
 * with exactly one fenced transition: completed (with the next stage), a failure handed to the
 * recovery policy, or released at shutdown. It owns the in-flight tasks and a TransitionBatcher
 * (group commit of claims and completions); it borrows the pool, the emitter, the logger and the
 * metrics of `deps` and closes none of them.
 *
 * Lifecycle: `new TaskRunner(deps)` → `run()` per BullMQ job → at shutdown `abortAll()` (tasks
 * release their attempts) or `drain()`. Guarantees: a task whose attempt moved on (declared stalled,
 * reset elsewhere) writes zero rows, aborts, removes only its own partial output and never marks
 * anything completed (`lease_lost`); a malformed job touches no operation.
 */
export class TaskRunner {
  readonly #deps: TaskRunnerDeps;
  readonly #running = new Map<string, Running>();
  /** Claims and completions (with their next stage) of concurrent tasks share statements (group commit). */
  readonly #transitions: TransitionBatcher;
  /** Tasks share the process, or one runs alone (an isolation queue's job; issue 13.4). */
  readonly #gate = new ProcessGate();
  /** Tasks of isolation queues waiting or running (for `onAlone`). */
  #alone = 0;

  constructor(deps: TaskRunnerDeps) {
    this.#deps = deps;
    this.#transitions = new TransitionBatcher(deps.db, { ...deps.config.transitions, nextStage: NEXT_STAGE });
  }

  get inFlight(): number {
    return this.#running.size;
  }

  /**
   * Handles one job. Resolves with the outcome; rejects only for a malformed payload (the job fails).
   * `alone` (a job of an isolation queue): it is claimed only once no other task runs in this
   * process, and no other starts until it ends, so a death of the process during it is its own.
   */
  run(data: unknown, bullJobId: string | undefined, queue: string, alone = false): Promise<TaskOutcome> {
    const parsed = jobPayloadSchema.safeParse(data);
    const ref = parsed.success
      ? { type: parsed.data.operationType, id: parsed.data.operationId, attempt: parsed.data.attempt }
      : undefined;
    if (!parsed.success || ref === undefined || (bullJobId !== undefined && bullJobId !== jobId(ref))) {
      const problems = parsed.success
        ? [`job id ${bullJobId} does not match its payload (${jobId(ref!)})`]
        : parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
      this.#deps.metrics.malformedJobs.inc();
      this.#deps.logger.error(
        { jobId: bullJobId, queue, problems },
        'malformed job payload: failing the job, no operation touched',
      );
      return Promise.reject(
        new ValidationError(`malformed job ${bullJobId ?? '(no id)'}: ${problems.join('; ')}`, {
          context: { problems },
        }),
      );
    }
    const controller = new AbortController();
    const done = this.#runGated(ref, queue, controller, alone).finally(() =>
      this.#running.delete(jobId(ref)),
    );
    this.#running.set(jobId(ref), { ref, controller, done });
    return done;
  }

  /** Aborts every running task (they release their attempts) and waits for them, up to `timeoutMs`. */
  async abortAll(reason: string, timeoutMs: number): Promise<void> {
    for (const r of this.#running.values()) r.controller.abort(new ShutdownAbort(reason));
    await this.drain(timeoutMs);
  }

  /** Waits until no task runs, or `timeoutMs` passed; true when drained. */
  async drain(timeoutMs: number): Promise<boolean> {
    const all = Promise.allSettled([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)),
    );
    const result = await Promise.race([all.then(() => 'drained' as const), timeout]);
    clearTimeout(timer);
    return result === 'drained';
  }

  /** Passes the process gate (shared, or alone), then runs the task; the gate is given back at its end. */
  async #runGated(
    ref: OperationRef,
    queue: string,
    controller: AbortController,
    alone: boolean,
  ): Promise<TaskOutcome> {
    if (alone && this.#alone++ === 0) this.#deps.onAlone?.(true);
    try {
      let release;
      try {
        release = alone
          ? await this.#gate.alone(controller.signal)
          : await this.#gate.shared(controller.signal);
      } catch {
        // Aborted (shutdown) before its claim: the row stays scheduled and its job is re-dispatched.
        this.#deps.metrics.jobs.inc({ operation_type: ref.type, outcome: 'not_started' });
        return 'not_started';
      }
      try {
        if (alone) {
          const fields = { operationType: ref.type, operationId: ref.id, attempt: ref.attempt };
          this.#deps.logger.info(fields, 'running alone in this process');
        }
        return await this.#runClaimed(ref, queue, controller);
      } finally {
        release();
      }
    } finally {
      if (alone && --this.#alone === 0) this.#deps.onAlone?.(false);
    }
  }

  async #runClaimed(ref: OperationRef, queue: string, controller: AbortController): Promise<TaskOutcome> {
    const d = this.#deps;
    const log = d.logger.child({
      operationType: ref.type,
      operationId: ref.id,
      attempt: ref.attempt,
    }); // d.logger already binds workerId: each key once per line
    const claimed = await this.#transitions.claim(ref, { workerId: d.workerId });
    if (!claimed.applied) {
      log.info(
        { decision: 'claim_refused' },
        'claim refused: this attempt is not scheduled (duplicate or late job)',
      );
      d.metrics.jobs.inc({ operation_type: ref.type, outcome: 'claim_refused' });
      return 'claim_refused';
    }
    const started = performance.now();
    d.metrics.inFlight.inc({ operation_type: ref.type });
    // The live heartbeat handle (replaced when a lost heartbeat is registered again).
    const hb: Heartbeat = { handle: undefined, finished: false };
    let bytesDone = 0;
    let lastDbWrite = performance.now();
    const ctx: OperationContext = {
      ref,
      db: d.db,
      signal: controller.signal,
      logger: log,
      transport: d.transport,
      progress: (n) => {
        bytesDone = n;
        hb.handle?.progress({ bytes: n });
        // A throttled, fenced sign of life in PostgreSQL, for when Redis loses the heartbeats.
        if (performance.now() - lastDbWrite >= d.config.progressWriteIntervalMs) {
          lastDbWrite = performance.now();
          updateProgress(d.db, ref, { bytesDone: n }).then(
            (r) => {
              if (!r.applied)
                controller.abort(new LeaseLostError('progress write refused: the attempt moved on'));
            },
            (e: unknown) => log.warn({ err: classifyError(e).message }, 'progress write failed'),
          );
        }
      },
      assertLease: async () => {
        const r = await updateProgress(d.db, ref, { bytesDone });
        if (!r.applied) {
          const e = new LeaseLostError('fenced check refused: the attempt moved on');
          controller.abort(e);
          throw e;
        }
        controller.signal.throwIfAborted();
      },
      checkpoint: (stage) => d.faults.checkpoint(ref, stage, controller.signal),
    };
    let outcome: TaskOutcome;
    try {
      await this.#track(ref, queue, controller, log, hb);
      // What interrupted earlier attempts left (attempt 0 has no earlier attempts).
      if (ref.attempt > 0) {
        await d.recovery.registry
          .get(ref.type)
          .cleanup({ db: d.db, ref: { ...ref, attempt: ref.attempt - 1 }, logger: log });
      }
      const result = await (d.operations ?? OPERATIONS)[ref.type].run(ctx);
      controller.signal.throwIfAborted();
      const event = {
        event: {
          workerId: d.workerId,
          context: { bytes: result.bytes, durationMs: Math.round(performance.now() - started) },
        },
      };
      // Completion, its bookkeeping and the next stage commit together, group-committed: the record in
      // the batch's fenced statement, a finalize and the next stage in its transaction, after it.
      const { applied } = await this.#transitions.complete(
        ref,
        { ...event, ...(result.record !== undefined && { record: result.record }) },
        result.finalize,
      );
      if (!applied) throw new LeaseLostError('completion refused: the attempt moved on');
      d.metrics.bytes.inc({ operation_type: ref.type }, result.bytes);
      log.info(
        { decision: 'completed', bytes: result.bytes, durationMs: Math.round(performance.now() - started) },
        'operation completed',
      );
      outcome = 'completed';
    } catch (thrown) {
      outcome = await this.#handleFailure(ref, thrown, controller, log);
    } finally {
      d.metrics.inFlight.dec({ operation_type: ref.type });
      // A re-registration still in flight sees `finished` and untracks its own handle.
      hb.finished = true;
      await hb.handle
        ?.untrack()
        .catch((e: unknown) => log.warn({ err: classifyError(e).message }, 'untrack failed'));
    }
    d.metrics.jobs.inc({ operation_type: ref.type, outcome });
    d.metrics.duration.observe({ operation_type: ref.type, outcome }, (performance.now() - started) / 1000);
    return outcome;
  }

  /** Registers the heartbeat; on "lost", checks the fenced row and either re-registers or aborts. */
  async #track(
    ref: OperationRef,
    queue: string,
    controller: AbortController,
    log: Logger,
    hb: Heartbeat,
  ): Promise<void> {
    const d = this.#deps;
    // The member's deadline is the last beat + the process's liveness bound; its progress deadline
    // the last progress change + this type's progress bound (DESIGN §5).
    const { livenessTimeoutMs, progressTimeoutMs } = timeoutsFor(d.config, ref.type);
    const register = async (now: boolean): Promise<void> => {
      try {
        const t = await d.heartbeat.track(jobId(ref), {
          timeoutMs: livenessTimeoutMs,
          progressTimeoutMs,
          queue,
          attributes: { workerId: d.workerId },
          now,
        });
        if (hb.finished) {
          // The task ended while this registration was on its way: take it back.
          await t.untrack();
          return;
        }
        hb.handle = t;
        t.signal.addEventListener('abort', () => void onLost(t.signal.reason), { once: true });
      } catch (e) {
        // Without a heartbeat the database sign of life (progress writes) still lets the monitor reconcile.
        log.warn(
          { err: classifyError(e).message },
          'heartbeat registration failed; relying on database progress writes',
        );
      }
    };
    const onLost = async (why: unknown) => {
      if (controller.signal.aborted || hb.finished) return;
      try {
        const row = await readOperation(d.db, ref.type, ref.id);
        // Finished meanwhile (its completion may be what the read saw as still in progress).
        if (hb.finished) return;
        if (row?.status === 'in_progress' && row.attempt === ref.attempt) {
          log.warn(
            { reason: lostReason(why) },
            'heartbeat member missing or expired but the attempt is still ours (Redis lost data or came back with older data, or this process was cut off): re-registering',
          );
          // At once, not with the next beat: the monitors have counted since they saw it missing, so
          // a process back from a freeze of most of its bound would be a beat late (issue 13 adversary:
          // frozen 10 s of 12 across a Redis flush, its task was recovered 3 s after it woke).
          await register(true);
          return;
        }
        controller.abort(
          new LeaseLostError(
            `attempt ${ref.attempt} moved on (now ${row?.status ?? 'gone'} at attempt ${row?.attempt ?? '?'})`,
          ),
        );
      } catch (e) {
        // Registered again anyway: left unregistered, a live task was recovered once its wait ran out
        // (Redis data lost while PostgreSQL was unreachable, issue 13 adversary, round 9). If the
        // attempt did move on, the next fenced write stops this task (and its member goes with it),
        // and the monitor's recovery of a member whose attempt moved on is fenced.
        log.warn(
          { err: classifyError(e).message, reason: lostReason(why) },
          'could not check the row after a lost heartbeat: re-registering; the next fenced write tells whether the attempt is still ours',
        );
        if (!controller.signal.aborted && !hb.finished) await register(true);
      }
    };
    await register(false);
  }

  async #handleFailure(
    ref: OperationRef,
    thrown: unknown,
    controller: AbortController,
    log: Logger,
  ): Promise<TaskOutcome> {
    const d = this.#deps;
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : undefined;
    const cleanup = () =>
      d.recovery.registry
        .get(ref.type)
        .cleanup({ db: d.db, ref, logger: log })
        .catch((e: unknown) =>
          log.warn({ err: classifyError(e).message }, 'cleanup of partial output failed'),
        );
    try {
      if (reason instanceof ShutdownAbort) {
        const r = await release(d.db, ref, {
          event: { workerId: d.workerId, context: { reason: reason.message } },
        });
        await cleanup();
        log.info(
          { decision: r.applied ? 'released' : 'lease_lost' },
          r.applied
            ? 'released on shutdown: pending again, no retry counted'
            : 'lease_lost while shutting down',
        );
        return r.applied ? 'released' : 'lease_lost';
      }
      const error = reason instanceof LeaseLostError ? reason : thrown;
      const outcome = await applyFailure(d.recovery, { ref, error, workerId: d.workerId });
      await cleanup();
      const e = outcome.error;
      d.metrics.failures.inc({ operation_type: ref.type, error_code: e.code });
      switch (outcome.kind) {
        case 'retry_scheduled':
          d.metrics.retriesScheduled.inc({ operation_type: ref.type });
          return 'retry_scheduled';
        case 'permanent_failure':
          d.metrics.permanentFailures.inc({ operation_type: ref.type });
          return 'permanent_failure';
        case 'lease_lost':
          d.metrics.leaseLost.inc({ operation_type: ref.type });
          return 'lease_lost';
      }
    } catch (e) {
      // PostgreSQL is unreachable: the attempt stays in progress; the monitor recovers it when its
      // heartbeat (untracked now) and its database sign of life are both older than the timeout.
      log.error(
        { err: classifyError(e).message, cause: classifyError(thrown).message },
        'could not record the failure; leaving it to the monitor',
      );
      return 'recovery_deferred';
    }
  }
}

/** 'missing' or 'expired' from a HeartbeatLostError's context (what a beat found); undefined otherwise. */
function lostReason(error: unknown): unknown {
  return error instanceof HeartbeatLostError ? error.context['reason'] : undefined;
}
