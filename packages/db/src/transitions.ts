// Over 300 lines: every fenced transition of the state machine, and the row locks that guard them, in one place.
// The fenced state transitions (DESIGN §4), each one statement built from the table in
// internal/state-machine.ts, optionally with its operation_events row and outbox notification in the
// same statement (data-modifying CTEs), so it applies whole or not at all. "Applied: false" means the
// row was not in the expected state or the attempt moved on: the caller's lease is gone and it must
// not write anything else.
import { classifyError, truncate } from '@ccat/errors';
import { classified } from './internal/classified.js';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { ErrorInfo, TransitionOptions } from './events.js';
import { MAX_MESSAGE, MAX_NAME } from './limits.js';
import {
  OPERATION_TABLES,
  parseAttempt,
  parseOperationId,
  parseOperationType,
  type OperationRef,
  type OperationType,
} from './operation-types.js';
import { storedText } from './sanitize.js';
import type { Database } from './schema.js';
import type { OperationSnapshot } from './snapshot.js';
import { eventValues, insertEvent, insertNotification, notificationValues } from './internal/row-writer.js';
import {
  checkRef,
  eventAttempt,
  fence,
  NO_RECORD,
  recordSetList,
  recordValues,
  setList,
  TRANSITIONS,
  type Arg,
  type CompletionRecord,
  type TransitionName,
} from './internal/state-machine.js';

/** A completion's options: its event or notification, and what it records on its row (CompletionRecord). */
export interface CompleteOptions extends TransitionOptions {
  readonly record?: CompletionRecord;
}
import { snapshotColumns, stateColumn, toSnapshot, type RawSnapshot } from './internal/state-sql.js';

/** What a hot-path transition (claim, progress, complete, touch) answers: it returns no row, to stay cheap. */
export interface FencedWriteResult {
  /** True when the row was in the expected state and changed. */
  readonly applied: boolean;
  readonly eventId?: string;
  readonly notificationId?: string;
}

/** What a state-resetting transition answers: also the row after the change (only when applied). */
export interface TransitionResult extends FencedWriteResult {
  readonly operation?: OperationSnapshot;
}

type Db = Kysely<Database>;
type Args = Partial<Record<Arg, RawBuilder<unknown>>>;

/** Runs transition `name` on one row; `attempt` undefined only where its fence allows. */
async function run(
  db: Db,
  name: TransitionName,
  target: { type: OperationType; id: string; attempt?: number },
  args: Args,
  options: TransitionOptions,
  error?: ErrorInfo,
  extra: readonly RawBuilder<unknown>[] = [],
): Promise<TransitionResult> {
  const { type, id } = target;
  const t = TRANSITIONS[name];
  const attempt = target.attempt === undefined ? undefined : sql`${target.attempt}`;
  const returning =
    t.returns === 'row' ? snapshotColumns(type) : sql`id, ${stateColumn(type, 'attempt')} AS attempt`;
  const update = sql`UPDATE ${sql.table(OPERATION_TABLES[type].table)} SET ${setList(name, type, args, extra)}
    WHERE id = ${id} AND ${fence(name, type, attempt)} RETURNING ${returning}`;
  const ctes = [sql`u AS (${update})`];
  const select = [sql`u.*`];
  const u = { type, id: sql`u.id`, attempt: eventAttempt(name) };
  if (options.event !== undefined) {
    ctes.push(sql`e AS (${insertEvent(u, eventValues(t.event, options.event, error), sql`u`)})`);
    select.push(sql`(SELECT id FROM e) AS event_id`);
  }
  if (options.notification !== undefined) {
    ctes.push(
      sql`n AS (${insertNotification(notificationValues(options.notification), u, { from: sql`u` })})`,
    );
    select.push(sql`(SELECT id FROM n) AS notification_id`);
  }
  const query = ctes.length === 1 ? update : sql`WITH ${sql.join(ctes)} SELECT ${sql.join(select)} FROM u`;
  const row = await classified(async () => (await (query as RawBuilder<RawSnapshot>).execute(db)).rows[0]);
  if (row === undefined) return { applied: false };
  return {
    applied: true,
    ...(t.returns === 'row' && { operation: toSnapshot(type, row) }),
    ...(row.event_id != null && { eventId: String(row.event_id) }),
    ...(row.notification_id != null && { notificationId: String(row.notification_id) }),
  };
}

const errorArgs = (error: ErrorInfo): Args => ({
  errorCode: sql`${truncate(error.code, MAX_NAME)}`,
  errorMessage: sql`${storedText(error.message, MAX_MESSAGE)}`,
});

function due(delayMs: number): Args {
  if (!Number.isFinite(delayMs) || delayMs < 0)
    throw classifyError(new RangeError(`delayMs must be a finite non-negative number, got ${delayMs}`));
  return { nextAttemptAt: sql`now() + make_interval(secs => ${delayMs / 1000})` };
}

/** pending (and due) → scheduled. Returns the attempt to put in the job id. Not attempt-fenced: pending has one owner, the dispatcher. */
export async function dispatch(
  db: Db,
  type: OperationType,
  id: string | number,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  return run(db, 'dispatch', { type: parseOperationType(type), id: parseOperationId(id) }, {}, options);
}

/**
 * Moves up to `limit` due pending rows to scheduled in one statement and returns their refs. Rows
 * locked by a concurrent dispatcher are skipped, so several dispatchers never take the same row.
 */
export async function dispatchDue(
  db: Db,
  type: OperationType,
  options: { limit: number },
): Promise<OperationRef[]> {
  const t = parseOperationType(type);
  const { table } = OPERATION_TABLES[t];
  const limit = Math.max(1, Math.min(10_000, Math.floor(options.limit)));
  return classified(async () => {
    // MATERIALIZED: an IN (subquery … SKIP LOCKED LIMIT n) may be re-run by the planner and then
    // pick more than n rows; a materialized CTE is evaluated exactly once.
    const result = await sql<{ id: string; attempt: number }>`
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${sql.table(table)} WHERE ${fence('dispatch', t, undefined, undefined, 'scan')}
        ORDER BY ${stateColumn(t, 'next_attempt_at')} LIMIT ${limit} FOR UPDATE SKIP LOCKED
      )
      UPDATE ${sql.table(table)} AS o SET ${setList('dispatch', t, {})}
      FROM picked WHERE o.id = picked.id AND ${fence('dispatch', t, undefined, 'o')}
      RETURNING o.id, o.${stateColumn(t, 'attempt')} AS attempt`.execute(db);
    return result.rows.map((r) => ({ type: t, id: String(r.id), attempt: r.attempt }));
  });
}

/** scheduled(attempt k) → in_progress, owned by `workerId`. Of two claimers of one job, exactly one applies. */
export async function claim(
  db: Db,
  ref: OperationRef,
  claimer: { workerId: string },
  options: TransitionOptions = {},
): Promise<FencedWriteResult> {
  return run(
    db,
    'claim',
    checkRef(ref),
    { claimedBy: sql`${truncate(claimer.workerId, MAX_NAME)}` },
    options,
  );
}

/** A sign of life in the database (independent of Redis): progress and last_seen_at, fenced. */
export async function updateProgress(
  db: Db,
  ref: OperationRef,
  progress: { bytesDone?: number | bigint } = {},
): Promise<FencedWriteResult> {
  const bytes = progress.bytesDone;
  return run(
    db,
    'progress',
    checkRef(ref),
    bytes === undefined ? {} : { progressBytes: sql`${String(bytes)}` },
    {},
  );
}

/**
 * in_progress(k) → completed, with `options.record` written by the same fenced statement. A zombie
 * whose attempt was recovered changes nothing, its record included. Throws a ValidationError for a
 * bad ref or a record the type does not take.
 */
export async function complete(
  db: Db,
  ref: OperationRef,
  options: CompleteOptions = {},
): Promise<FencedWriteResult> {
  const r = checkRef(ref);
  const values = recordValues(r.type, options.record);
  const extra =
    values === NO_RECORD
      ? []
      : recordSetList(
          r.type,
          values.map((v) => sql`${v}`),
        );
  return run(db, 'complete', r, {}, options, undefined, extra);
}

/** in_progress(k) → pending(k+1), retry_count+1, next_attempt_at = now + delay. */
export async function resetForRetry(
  db: Db,
  ref: OperationRef,
  args: { delayMs: number; error: ErrorInfo },
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const a = { ...due(args.delayMs), ...errorArgs(args.error) };
  return run(db, 'retry', checkRef(ref), a, options, args.error);
}

/** in_progress(k) → pending(k+1) after a stall (monitor); counts toward the retry limit. */
export async function recoverStalled(
  db: Db,
  ref: OperationRef,
  args: { delayMs?: number; error?: ErrorInfo } = {},
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const error = args.error ?? { code: 'STALLED', message: 'heartbeat deadline passed', retryable: true };
  const a = { ...due(args.delayMs ?? 0), ...errorArgs(error) };
  return run(db, 'stall', checkRef(ref), a, options, error);
}

/**
 * in_progress(k) → pending(k+1) after the attempt's worker process died or froze while it shared it
 * with other tasks (monitor): stall_count+1, no retry counted, due after `delayMs`; run_alone becomes
 * `runAlone` (true sends every later attempt to its location's isolation queue). Fenced like every reset;
 * `applied: false` when the attempt moved on. Throws a classified error for a bad delay or when the
 * database refuses.
 */
export async function recoverSharedStall(
  db: Db,
  ref: OperationRef,
  args: { delayMs: number; error: ErrorInfo; runAlone: boolean },
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const a = { ...due(args.delayMs), ...errorArgs(args.error), runAlone: sql`${args.runAlone}` };
  return run(db, 'sharedStall', checkRef(ref), a, options, args.error);
}

/** in_progress(k) → pending(k+1) on graceful shutdown: due now, no retry counted. */
export async function release(
  db: Db,
  ref: OperationRef,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  return run(db, 'release', checkRef(ref), due(0), options);
}

/** in_progress(k) → failed; the error is kept on the row. */
export async function markFailed(
  db: Db,
  ref: OperationRef,
  args: { error: ErrorInfo },
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  return run(db, 'fail', checkRef(ref), errorArgs(args.error), options, args.error);
}

/**
 * failed → pending(attempt+1), retry_count reset, due now (an operator's decision). With
 * `expectedAttempt`, applies only if the row is still at that attempt.
 */
export async function manualRetry(
  db: Db,
  type: OperationType,
  id: string | number,
  args: { expectedAttempt?: number } = {},
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const target = {
    type: parseOperationType(type),
    id: parseOperationId(id),
    ...(args.expectedAttempt !== undefined && { attempt: parseAttempt(args.expectedAttempt) }),
  };
  return run(db, 'manualRetry', target, {}, options);
}

/** scheduled(k) stays scheduled(k) with a fresh scheduled_at: the job was re-created with the same id. */
export async function touchScheduled(
  db: Db,
  ref: OperationRef,
  options: TransitionOptions = {},
): Promise<FencedWriteResult> {
  return run(db, 'redispatch', checkRef(ref), {}, options);
}

/** The snapshot of `type`'s row under `where` (and `lock`), or undefined. */
function snapshotWhere(db: Db, type: OperationType, where: RawBuilder<unknown>, lock = sql``) {
  return classified(async () => {
    const { rows } = await sql<RawSnapshot>`SELECT ${snapshotColumns(type)}
      FROM ${sql.table(OPERATION_TABLES[type].table)} WHERE ${where} ${lock}`.execute(db);
    return rows[0] === undefined ? undefined : toSnapshot(type, rows[0]);
  });
}

/** The current state of one operation, or undefined when there is no such row (or no such unpack yet). */
export async function readOperation(
  db: Db,
  type: OperationType,
  id: string | number,
): Promise<OperationSnapshot | undefined> {
  const t = parseOperationType(type);
  return snapshotWhere(db, t, sql`id = ${parseOperationId(id)} AND ${stateColumn(t, 'status')} IS NOT NULL`);
}

/**
 * Locks the row of attempt k while it is in_progress (SELECT … FOR UPDATE) inside the caller's
 * transaction, for decisions that read before they write: the fence of every in_progress
 * transition. Undefined when the attempt moved on.
 */
export async function lockInProgress(trx: Db, ref: OperationRef): Promise<OperationSnapshot | undefined> {
  const r = checkRef(ref);
  return snapshotWhere(
    trx,
    r.type,
    sql`id = ${r.id} AND ${fence('complete', r.type, sql`${r.attempt}`)}`,
    sql`FOR UPDATE`,
  );
}

/**
 * As {@link lockInProgress}, but never waits for a row lock (FOR UPDATE SKIP LOCKED): `'locked'` when
 * the attempt is still in progress but another transaction holds its row (a worker in its
 * completion, another monitor; read without a lock), undefined when the attempt moved on. For the
 * monitor, which must not stall on one row: it retries a locked row later.
 */
export async function tryLockInProgress(
  trx: Db,
  ref: OperationRef,
): Promise<OperationSnapshot | 'locked' | undefined> {
  const r = checkRef(ref);
  const where = sql`id = ${r.id} AND ${fence('complete', r.type, sql`${r.attempt}`)}`;
  const row = await snapshotWhere(trx, r.type, where, sql`FOR UPDATE SKIP LOCKED`);
  if (row !== undefined) return row;
  return (await snapshotWhere(trx, r.type, where)) === undefined ? undefined : 'locked';
}
