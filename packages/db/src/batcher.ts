// Over 300 lines: one class, the group commit (lanes, one statement per flush, the row-by-row fallback), read in one sitting.
// Group commit for the hot path. A worker running many short operations at once claims and
// completes them one row at a time; each is a round trip, a transaction and a WAL flush, and on a
// loaded machine those (not the SQL) are the cost. The batcher sends the claims (and completions)
// of one operation type that wait at the same moment as ONE statement over arrays: every row is
// still fenced on its own status and attempt, every completion still commits with its event row,
// and each caller learns whether its own row applied. A call that finds nothing in flight goes
// out at once, so at low load nothing waits; under load the waiting calls ride together.
import { classifyError, truncate } from '@ccat/errors';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import type { EventDetails, TransitionOptions } from './events.js';
import { eventValues, insertEvent } from './internal/row-writer.js';
import {
  checkRef,
  fence,
  recordSetList,
  recordValues,
  setList,
  TRANSITIONS,
} from './internal/state-machine.js';
import { MAX_NAME } from './limits.js';
import { OPERATION_TABLES, type OperationRef, type OperationType } from './operation-types.js';
import type { Database } from './schema.js';
import { claim, complete, type CompleteOptions, type FencedWriteResult } from './transitions.js';

export interface TransitionBatcherOptions {
  /** Most rows in one statement (default 100). 1 turns batching off: every call is its own statement. */
  readonly maxBatch?: number;
  /**
   * Statements in flight at once per operation type and transition (default 1: the calls that
   * arrive meanwhile make the next statement as large as it gets; measured on 2 cores, 1 kept
   * 0.91-0.98 of a naive worker's throughput, 2 about 0.75-0.81, 4 about 0.56). More lets one slow
   * statement (a row lock held elsewhere) hold up fewer calls.
   */
  readonly maxInFlight?: number;
  /** Per type, what follows a completion: once per batch, in its transaction, with the refs that applied. */
  readonly nextStage?: { readonly [T in OperationType]?: NextStage };
}

/** Creates the operations that follow completed ones of one type (all of `refs`), inside `trx`. */
export type NextStage = (trx: Kysely<Database>, refs: readonly OperationRef[]) => Promise<void>;

/**
 * A completion's own bookkeeping (checksums, verified_at, deleted_at): run inside the completion's
 * transaction, only after its fenced completion applied, so it is fenced by it.
 */
export type Finalize = (trx: Kysely<Database>) => Promise<void>;

/** A finalize that threw, told apart from a statement's error so that only its own row fails. */
class FinalizeFailed extends Error {
  constructor(readonly original: unknown) {
    super('finalize failed', { cause: original });
  }
}

type Kind = 'claim' | 'complete';
/** A row without an event: its event columns (see eventValues) are NULL. */
const NO_EVENT = Array<null>(7).fill(null);

interface Item {
  readonly ref: OperationRef;
  /** The row's values, in the order of the statement's unnest() columns. */
  readonly values: readonly unknown[];
  /** For sorting: rows are locked in id order in every process, so two batches cannot deadlock. */
  readonly order: bigint;
  /** A completion's bookkeeping, run after the batch's statement when its row applied. */
  readonly finalize?: Finalize;
  readonly resolve: (r: FencedWriteResult) => void;
  readonly reject: (e: unknown) => void;
}

interface Lane {
  readonly kind: Kind;
  readonly type: OperationType;
  waiting: Item[];
  inFlight: number;
  scheduled: boolean;
  /** The statement, compiled at the first batch. */
  sql?: string;
}

/**
 * Errors PostgreSQL raised about the rows of a statement it then rolled back (a bad value, a
 * constraint, a deadlock, a trigger's RAISE): worth retrying each row alone. Connection, permission
 * and schema errors would fail every row the same way, so they fail the batch.
 */
function rowError(e: unknown): boolean {
  const err = e as { code?: unknown; severity?: unknown } | null;
  return (
    typeof err?.severity === 'string' &&
    typeof err.code === 'string' &&
    ['22', '23', '40', 'P0'].includes(err.code.slice(0, 2))
  );
}

/**
 * Batches `claim` and `complete` (the two transitions every job makes) per operation type, a
 * completion's own bookkeeping (`finalize`) included: it runs in the batch's transaction after the
 * batch's statement, for each row that applied, so a batch is one commit however many rows carry
 * bookkeeping (issue 13.5: completions with bookkeeping were one transaction each). Results
 * are those of the single-row functions: `applied` per row, `eventId` when an event was written.
 * Calls with a notification take the single-row path. Rows are fenced exactly as there; a row
 * appears at most once per statement (a second call for the same id waits for the next one), and
 * rows are updated in id order, so two processes' statements cannot deadlock each other. When
 * PostgreSQL rejects a statement of several rows for a row's sake (a bad value, a constraint, a
 * deadlock, a trigger), each row is retried alone, so one row's error is only that row's. Any other
 * error (connection, permissions) fails the whole batch, as it would each single statement.
 */
export class TransitionBatcher {
  readonly #db: Kysely<Database>;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  readonly #nextStage: TransitionBatcherOptions['nextStage'];
  readonly #lanes = new Map<string, Lane>();

  constructor(db: Kysely<Database>, options: TransitionBatcherOptions = {}) {
    const maxBatch = options.maxBatch ?? 100;
    const maxInFlight = options.maxInFlight ?? 1;
    if (!Number.isInteger(maxBatch) || maxBatch < 1 || maxBatch > 10_000)
      throw classifyError(new RangeError(`maxBatch must be an integer in 1..10000, got ${maxBatch}`));
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 1000)
      throw classifyError(new RangeError(`maxInFlight must be an integer in 1..1000, got ${maxInFlight}`));
    this.#db = db;
    this.#maxBatch = maxBatch;
    this.#maxInFlight = maxInFlight;
    this.#nextStage = options.nextStage;
  }

  /** Statements in flight or waiting rows, for shutdown checks and metrics. */
  get pending(): number {
    let n = 0;
    for (const lane of this.#lanes.values()) n += lane.waiting.length + lane.inFlight;
    return n;
  }

  /** scheduled(k) → in_progress(k), as `claim`. */
  claim(
    ref: OperationRef,
    claimer: { workerId: string },
    options: TransitionOptions = {},
  ): Promise<FencedWriteResult> {
    if (this.#maxBatch === 1 || options.notification !== undefined)
      return claim(this.#db, ref, claimer, options);
    return this.#enqueue('claim', ref, () => truncate(claimer.workerId, MAX_NAME), options.event);
  }

  /**
   * in_progress(k) → completed, as `complete`: `options.record` written by the batch's statement
   * itself, then `finalize` (when given) and the type's next stage in its transaction, both only when
   * the fenced completion applied. Prefer a record to a finalize: it costs no statement of its own.
   * When `finalize` throws, nothing of this row is committed and this call rejects with its error; the
   * other rows of its batch are retried without it.
   */
  complete(
    ref: OperationRef,
    options: CompleteOptions = {},
    finalize?: Finalize,
  ): Promise<FencedWriteResult> {
    const next = this.#nextStage?.[ref.type];
    const one = async (db: Kysely<Database>) => {
      const c = await complete(db, ref, options);
      if (c.applied) {
        await finalize?.(db);
        await next?.(db, [ref]);
      }
      return c;
    };
    if (this.#maxBatch === 1 || options.notification !== undefined)
      return next === undefined && finalize === undefined
        ? one(this.#db)
        : this.#db.transaction().execute(one);
    return this.#enqueue('complete', ref, () => null, options.event, finalize, options.record);
  }

  #enqueue(
    kind: Kind,
    ref: OperationRef,
    claimedBy: () => string | null,
    event: EventDetails | undefined,
    finalize?: Finalize,
    record?: CompleteOptions['record'],
  ): Promise<FencedWriteResult> {
    let r: OperationRef;
    let values: unknown[];
    try {
      r = checkRef(ref);
      // Built here, so a caller's bad value fails that call alone (as the single-row path would).
      values = [
        r.id,
        r.attempt,
        claimedBy(),
        event !== undefined,
        ...(event === undefined ? NO_EVENT : eventValues(TRANSITIONS[kind].event, event)),
        // A completion's record (claims have none): four more array columns.
        ...(kind === 'complete' ? recordValues(r.type, record) : []),
      ];
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : classifyError(e));
    }
    const key = `${kind}:${r.type}`;
    let lane = this.#lanes.get(key);
    if (lane === undefined) {
      lane = { kind, type: r.type, waiting: [], inFlight: 0, scheduled: false };
      this.#lanes.set(key, lane);
    }
    const l = lane;
    return new Promise<FencedWriteResult>((resolve, reject) => {
      l.waiting.push({
        ref: r,
        values,
        order: BigInt(r.id),
        ...(finalize !== undefined && { finalize }),
        resolve,
        reject,
      });
      // Calls made in the same tick go together; later ones wait for a free flight.
      if (!l.scheduled) {
        l.scheduled = true;
        queueMicrotask(() => {
          l.scheduled = false;
          this.#pump(l);
        });
      }
    });
  }

  #pump(lane: Lane): void {
    while (lane.inFlight < this.#maxInFlight && lane.waiting.length > 0) {
      const batch: Item[] = [];
      const ids = new Set<string>();
      const rest: Item[] = [];
      for (const item of lane.waiting) {
        if (batch.length < this.#maxBatch && !ids.has(item.ref.id)) {
          ids.add(item.ref.id);
          batch.push(item);
        } else rest.push(item);
      }
      lane.waiting = rest;
      batch.sort((a, b) => (a.order < b.order ? -1 : a.order > b.order ? 1 : 0));
      lane.inFlight++;
      void this.#send(lane, batch).finally(() => {
        lane.inFlight--;
        this.#pump(lane);
      });
    }
  }

  async #send(lane: Lane, batch: readonly Item[]): Promise<void> {
    try {
      const applied = await this.#execute(lane, batch);
      for (const item of batch) {
        const eventId = applied.get(item.ref.id);
        item.resolve(
          eventId === undefined
            ? { applied: false }
            : { applied: true, ...(eventId !== null && { eventId }) },
        );
      }
    } catch (e) {
      if (batch.length > 1 && (rowError(e) || e instanceof FinalizeFailed)) {
        // Nothing applied; each row alone (one after another, to hold one connection), so a
        // row's own error stays with it.
        for (const item of batch) await this.#send(lane, [item]);
        return;
      }
      // A row's own finalize: its own error, as the single-row path would throw it.
      if (e instanceof FinalizeFailed) {
        const original = e.original;
        for (const item of batch) item.reject(original instanceof Error ? original : classifyError(original));
        return;
      }
      const error = classifyError(e);
      for (const item of batch) item.reject(error);
    }
  }

  /**
   * One statement for the batch (+ each applied row's finalize, in id order, and the next stage of
   * those that applied, in one transaction); their ids → event id or null.
   */
  async #execute(lane: Lane, batch: readonly Item[]): Promise<Map<string, string | null>> {
    // One array per unnest() column.
    const parameters = batch[0]!.values.map((_, c) => batch.map((item) => item.values[c]));
    lane.sql ??= this.#statement(lane, parameters);
    const query = CompiledQuery.raw(lane.sql, parameters);
    const next = lane.kind === 'complete' ? this.#nextStage?.[lane.type] : undefined;
    const run = async (db: Kysely<Database>) => {
      const { rows } = await db.executeQuery<{ id: string; event_id: string | null }>(query);
      const applied = new Map(rows.map((r) => [r.id, r.event_id]));
      const done = batch.filter((item) => applied.has(item.ref.id));
      for (const item of done)
        await item.finalize?.(db).catch((e: unknown) => {
          throw new FinalizeFailed(e);
        });
      if (next !== undefined && done.length > 0)
        await next(
          db,
          done.map((item) => item.ref),
        );
      return applied;
    };
    const alone = next === undefined && batch.every((item) => item.finalize === undefined);
    return alone ? run(this.#db) : this.#db.transaction().execute(run);
  }

  /** The lane's statement text, compiled once: only the arrays change from batch to batch. */
  #statement(lane: Lane, parameters: readonly unknown[]): string {
    const { table } = OPERATION_TABLES[lane.type];
    const [ids, attempts, claimedBy, withEvent, event, code, cls, message, retryable, context, worker] =
      parameters;
    const u = (c: string) => sql`u.${sql.id(c)}`;
    const columns = ['event', 'error_code', 'error_class', 'message', 'retryable', 'context', 'worker_id'];
    // A completion's record (CompletionRecord), as four more columns of v.
    const record = lane.kind === 'complete';
    const [sha256, size, verified, deleted] = parameters.slice(11);
    const recordColumns = record
      ? sql`, ${sha256}::text[], ${size}::bigint[], ${verified}::bool[], ${deleted}::bool[]`
      : sql``;
    const recordNames = record ? sql`, rec_sha256, rec_size_bytes, rec_verified, rec_deleted` : sql``;
    const recordSets = record
      ? recordSetList(lane.type, [
          sql`v.rec_sha256`,
          sql`v.rec_size_bytes`,
          sql`v.rec_verified`,
          sql`v.rec_deleted`,
        ])
      : [];
    const compiled = sql`
      WITH v AS (
        SELECT * FROM unnest(
          ${ids}::bigint[], ${attempts}::int[], ${claimedBy}::text[], ${withEvent}::bool[],
          ${event}::text[], ${code}::text[], ${cls}::text[], ${message}::text[], ${retryable}::bool[],
          ${context}::jsonb[], ${worker}::text[]${recordColumns}
        ) AS v(id, attempt, claimed_by, with_event, event, error_code, error_class, message, retryable, context, worker_id${recordNames})
      ), u AS (
        UPDATE ${sql.table(table)} AS t SET ${setList(lane.kind, lane.type, { claimedBy: sql`v.claimed_by` }, recordSets)}
        FROM v WHERE t.id = v.id AND ${fence(lane.kind, lane.type, sql`v.attempt`, 't')}
        RETURNING t.id, v.attempt, v.with_event, v.event, v.error_code, v.error_class, v.message, v.retryable, v.context, v.worker_id
      ), e AS (
        ${insertEvent({ type: sql.lit(lane.type), id: u('id'), attempt: u('attempt') }, columns.map(u), sql`u WHERE u.with_event`)}
      )
      SELECT u.id::text AS id, e.id::text AS event_id FROM u LEFT JOIN e ON e.operation_id = u.id`.compile(
      this.#db,
    );
    if (compiled.parameters.length !== parameters.length)
      throw new Error(`batched ${lane.kind} statement has ${compiled.parameters.length} parameters`);
    return compiled.sql;
  }
}
