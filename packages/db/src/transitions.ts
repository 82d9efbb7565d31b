// The fenced state transitions (DESIGN §4). Each is one conditional UPDATE, optionally with its
// operation_events row and outbox notification in the same statement (data-modifying CTEs), so it
// applies whole or not at all. "Applied: false" means the row was not in the expected state or the
// attempt moved on: the caller's lease is gone and it must not write anything else.
import { classifyError, truncate } from '@ccat/errors';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { ErrorInfo, OperationEventKind, TransitionOptions } from './events.js';
import {
  OPERATION_TABLES,
  parseAttempt,
  parseOperationId,
  parseOperationType,
  type OperationRef,
  type OperationStatus,
  type OperationType,
} from './operation-types.js';
import type { Database } from './schema.js';
import type { OperationSnapshot } from './snapshot.js';
import {
  snapshotColumns,
  stateColumn,
  toSnapshot,
  type RawSnapshot,
  type StateColumn,
} from './internal/state-sql.js';
import { checkRef, claimSets, completeSets, EVENT_COLUMNS, json, MAX_MESSAGE } from './internal/fenced.js';
import { storedText, storedTextOrNull } from './sanitize.js';

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

interface UpdateSpec {
  readonly type: OperationType;
  readonly id: string;
  /** Attempt the WHERE clause requires (undefined: any). */
  readonly attempt: number | undefined;
  /** Attempt recorded in the event (the one the decision was about). */
  readonly eventAttempt: RawBuilder<unknown>;
  readonly fromStatus: OperationStatus;
  readonly extraWhere?: RawBuilder<unknown>;
  readonly set: RawBuilder<unknown>[];
  readonly defaultEvent: OperationEventKind;
  readonly error?: ErrorInfo;
  /** RETURNING the whole snapshot costs ~15% on the claim/complete path; hot paths return only the id. */
  readonly snapshot: boolean;
}

async function fencedUpdate(db: Db, spec: UpdateSpec, options: TransitionOptions): Promise<TransitionResult> {
  const { table } = OPERATION_TABLES[spec.type];
  const where = [sql`id = ${spec.id}`, sql`${stateColumn(spec.type, 'status')} = ${spec.fromStatus}`];
  if (spec.attempt !== undefined) where.push(sql`${stateColumn(spec.type, 'attempt')} = ${spec.attempt}`);
  if (spec.extraWhere) where.push(spec.extraWhere);
  const update = sql`UPDATE ${sql.table(table)} SET ${sql.join([...spec.set, sql`updated_at = now()`])}
    WHERE ${sql.join(where, sql` AND `)} RETURNING ${spec.snapshot ? snapshotColumns(spec.type) : sql`id`}`;

  let query: RawBuilder<RawSnapshot>;
  if (options.event === undefined && options.notification === undefined) {
    query = update as RawBuilder<RawSnapshot>;
  } else {
    const ctes = [sql`u AS (${update})`];
    const select = [sql`u.*`];
    const ev = options.event;
    if (ev !== undefined) {
      const err = spec.error;
      const message = ev.message ?? err?.message;
      ctes.push(sql`e AS (
        INSERT INTO ${EVENT_COLUMNS}
        SELECT ${spec.type}, u.id, ${spec.eventAttempt}, ${ev.event ?? spec.defaultEvent}, ${ev.errorCode ?? err?.code ?? null},
          ${storedTextOrNull(ev.errorClass ?? err?.errorClass, 200)}, ${storedTextOrNull(message, MAX_MESSAGE)},
          ${ev.retryable ?? err?.retryable ?? null}, ${json({ ...err?.context, ...ev.context })}::jsonb, ${ev.workerId ?? null}
        FROM u RETURNING id)`);
      select.push(sql`(SELECT id FROM e) AS event_id`);
    }
    const n = options.notification;
    if (n !== undefined) {
      ctes.push(sql`n AS (
        INSERT INTO notifications (level, event_kind, subject, body, context, dedup_key, operation_type, operation_id)
        SELECT ${n.level}, ${n.eventKind}, ${storedText(n.subject, 500)}, ${storedText(n.body, 64_000)}, ${json(n.context)}::jsonb,
          ${n.dedupKey ?? null}, ${spec.type}, u.id
        FROM u RETURNING id)`);
      select.push(sql`(SELECT id FROM n) AS notification_id`);
    }
    query = sql<RawSnapshot>`WITH ${sql.join(ctes)} SELECT ${sql.join(select)} FROM u`;
  }
  let rows: RawSnapshot[];
  try {
    rows = (await query.execute(db)).rows;
  } catch (e) {
    throw classifyError(e);
  }
  const row = rows[0];
  if (row === undefined) return { applied: false };
  return {
    applied: true,
    ...(spec.snapshot && { operation: toSnapshot(spec.type, row) }),
    ...(row.event_id != null && { eventId: String(row.event_id) }),
    ...(row.notification_id != null && { notificationId: String(row.notification_id) }),
  };
}

function errorSets(type: OperationType, error: ErrorInfo): RawBuilder<unknown>[] {
  return [
    sql`${stateColumn(type, 'last_error_code')} = ${truncate(error.code, 200)}`,
    sql`${stateColumn(type, 'last_error_message')} = ${storedText(error.message, MAX_MESSAGE)}`,
  ];
}

function delayInterval(delayMs: number): RawBuilder<unknown> {
  if (!Number.isFinite(delayMs) || delayMs < 0)
    throw classifyError(new RangeError(`delayMs must be a finite non-negative number, got ${delayMs}`));
  return sql`now() + make_interval(secs => ${delayMs / 1000})`;
}

/** pending (and due) → scheduled. Returns the attempt to put in the job id. Not attempt-fenced: pending has one owner, the dispatcher. */
export async function dispatch(
  db: Db,
  type: OperationType,
  id: string | number,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const t = parseOperationType(type);
  return fencedUpdate(
    db,
    {
      type: t,
      id: parseOperationId(id),
      attempt: undefined,
      eventAttempt: sql`u.attempt`,
      fromStatus: 'pending',
      extraWhere: sql`${stateColumn(t, 'next_attempt_at')} <= now()`,
      set: [sql`${stateColumn(t, 'status')} = 'scheduled'`, sql`${stateColumn(t, 'scheduled_at')} = now()`],
      defaultEvent: 'dispatched',
      snapshot: true,
    },
    options,
  );
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
  const status = stateColumn(t, 'status');
  const limit = Math.max(1, Math.min(10_000, Math.floor(options.limit)));
  try {
    // MATERIALIZED: an IN (subquery … SKIP LOCKED LIMIT n) may be re-run by the planner and then
    // pick more than n rows; a materialized CTE is evaluated exactly once.
    const result = await sql<{ id: string; attempt: number }>`
      WITH picked AS MATERIALIZED (
        SELECT id FROM ${sql.table(table)}
        WHERE ${status} = 'pending' AND ${stateColumn(t, 'next_attempt_at')} <= now()
        ORDER BY ${stateColumn(t, 'next_attempt_at')} LIMIT ${limit} FOR UPDATE SKIP LOCKED
      )
      UPDATE ${sql.table(table)} AS o SET ${status} = 'scheduled', ${stateColumn(t, 'scheduled_at')} = now(), updated_at = now()
      FROM picked WHERE o.id = picked.id AND o.${status} = 'pending'
      RETURNING o.id, o.${stateColumn(t, 'attempt')} AS attempt`.execute(db);
    return result.rows.map((r) => ({ type: t, id: String(r.id), attempt: r.attempt }));
  } catch (e) {
    throw classifyError(e);
  }
}

/** scheduled(attempt k) → in_progress, owned by `workerId`. Of two claimers of one job, exactly one applies. */
export async function claim(
  db: Db,
  ref: OperationRef,
  claimer: { workerId: string },
  options: TransitionOptions = {},
): Promise<FencedWriteResult> {
  const r = checkRef(ref);
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'scheduled',
      set: claimSets(r.type, sql`${truncate(claimer.workerId, 200)}`),
      defaultEvent: 'claimed',
      snapshot: false,
    },
    options,
  );
}

/** A sign of life in the database (independent of Redis): progress and last_seen_at, fenced. */
export async function updateProgress(
  db: Db,
  ref: OperationRef,
  progress: { bytesDone?: number | bigint } = {},
): Promise<FencedWriteResult> {
  const r = checkRef(ref);
  const set = [sql`${stateColumn(r.type, 'last_seen_at')} = now()`];
  if (progress.bytesDone !== undefined)
    set.push(sql`${stateColumn(r.type, 'progress_bytes')} = ${String(progress.bytesDone)}`);
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'in_progress',
      set,
      defaultEvent: 'progress',
      snapshot: false,
    },
    {},
  );
}

/** in_progress(k) → completed. A zombie whose attempt was recovered changes nothing. */
export async function complete(
  db: Db,
  ref: OperationRef,
  options: TransitionOptions = {},
): Promise<FencedWriteResult> {
  const r = checkRef(ref);
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'in_progress',
      set: completeSets(r.type),
      defaultEvent: 'completed',
      snapshot: false,
    },
    options,
  );
}

async function resetToPending(
  db: Db,
  ref: OperationRef,
  args: { delayMs: number; countRetry: boolean; error?: ErrorInfo; defaultEvent: OperationEventKind },
  options: TransitionOptions,
): Promise<TransitionResult> {
  const r = checkRef(ref);
  const c = (n: StateColumn) => stateColumn(r.type, n);
  const set = [
    sql`${c('status')} = 'pending'`,
    sql`${c('attempt')} = ${c('attempt')} + 1`,
    sql`${c('next_attempt_at')} = ${delayInterval(args.delayMs)}`,
    sql`${c('scheduled_at')} = NULL`,
    sql`${c('claimed_by')} = NULL`,
  ];
  if (args.countRetry) set.push(sql`${c('retry_count')} = ${c('retry_count')} + 1`);
  if (args.error) set.push(...errorSets(r.type, args.error));
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'in_progress',
      set,
      defaultEvent: args.defaultEvent,
      snapshot: true,
      ...(args.error && { error: args.error }),
    },
    options,
  );
}

/** in_progress(k) → pending(k+1), retry_count+1, next_attempt_at = now + delay. */
export async function resetForRetry(
  db: Db,
  ref: OperationRef,
  args: { delayMs: number; error: ErrorInfo },
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  return resetToPending(db, ref, { ...args, countRetry: true, defaultEvent: 'retry_scheduled' }, options);
}

/** in_progress(k) → pending(k+1) after a stall (monitor); counts toward the retry limit. */
export async function recoverStalled(
  db: Db,
  ref: OperationRef,
  args: { delayMs?: number; error?: ErrorInfo } = {},
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const error = args.error ?? { code: 'STALLED', message: 'heartbeat deadline passed', retryable: true };
  return resetToPending(
    db,
    ref,
    { delayMs: args.delayMs ?? 0, error, countRetry: true, defaultEvent: 'stall_recovered' },
    options,
  );
}

/** in_progress(k) → pending(k+1) on graceful shutdown: due now, no retry counted. */
export async function release(
  db: Db,
  ref: OperationRef,
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  return resetToPending(db, ref, { delayMs: 0, countRetry: false, defaultEvent: 'released' }, options);
}

/** in_progress(k) → failed; the error is kept on the row. */
export async function markFailed(
  db: Db,
  ref: OperationRef,
  args: { error: ErrorInfo },
  options: TransitionOptions = {},
): Promise<TransitionResult> {
  const r = checkRef(ref);
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'in_progress',
      set: [
        sql`${stateColumn(r.type, 'status')} = 'failed'`,
        sql`${stateColumn(r.type, 'finished_at')} = now()`,
        ...errorSets(r.type, args.error),
      ],
      defaultEvent: 'permanent_failure',
      snapshot: true,
      error: args.error,
    },
    options,
  );
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
  const t = parseOperationType(type);
  const c = (n: StateColumn) => stateColumn(t, n);
  return fencedUpdate(
    db,
    {
      type: t,
      id: parseOperationId(id),
      attempt: args.expectedAttempt === undefined ? undefined : parseAttempt(args.expectedAttempt),
      eventAttempt: sql`u.attempt - 1`,
      fromStatus: 'failed',
      set: [
        sql`${c('status')} = 'pending'`,
        sql`${c('attempt')} = ${c('attempt')} + 1`,
        sql`${c('retry_count')} = 0`,
        sql`${c('next_attempt_at')} = now()`,
        sql`${c('finished_at')} = NULL`,
        sql`${c('scheduled_at')} = NULL`,
        sql`${c('claimed_by')} = NULL`,
      ],
      defaultEvent: 'manual_retry',
      snapshot: true,
    },
    options,
  );
}

/** scheduled(k) stays scheduled(k) with a fresh scheduled_at: the job was re-created with the same id. */
export async function touchScheduled(
  db: Db,
  ref: OperationRef,
  options: TransitionOptions = {},
): Promise<FencedWriteResult> {
  const r = checkRef(ref);
  return fencedUpdate(
    db,
    {
      type: r.type,
      id: r.id,
      attempt: r.attempt,
      eventAttempt: sql`${r.attempt}`,
      fromStatus: 'scheduled',
      set: [sql`${stateColumn(r.type, 'scheduled_at')} = now()`],
      defaultEvent: 'redispatched',
      snapshot: false,
    },
    options,
  );
}

/** The current state of one operation, or undefined when there is no such row (or no such unpack yet). */
export async function readOperation(
  db: Db,
  type: OperationType,
  id: string | number,
): Promise<OperationSnapshot | undefined> {
  const t = parseOperationType(type);
  const operationId = parseOperationId(id);
  try {
    const { rows } =
      await sql<RawSnapshot>`SELECT ${snapshotColumns(t)} FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE id = ${operationId} AND ${stateColumn(t, 'status')} IS NOT NULL`.execute(db);
    return rows[0] === undefined ? undefined : toSnapshot(t, rows[0]);
  } catch (e) {
    throw classifyError(e);
  }
}

/**
 * Locks the row of attempt k while it is in_progress (SELECT … FOR UPDATE) inside the caller's
 * transaction, for decisions that read before they write. Undefined when the attempt moved on.
 */
export async function lockInProgress(trx: Db, ref: OperationRef): Promise<OperationSnapshot | undefined> {
  const r = checkRef(ref);
  try {
    const { rows } =
      await sql<RawSnapshot>`SELECT ${snapshotColumns(r.type)} FROM ${sql.table(OPERATION_TABLES[r.type].table)}
      WHERE id = ${r.id} AND ${stateColumn(r.type, 'attempt')} = ${r.attempt} AND ${stateColumn(r.type, 'status')} = 'in_progress'
      FOR UPDATE`.execute(trx);
    return rows[0] === undefined ? undefined : toSnapshot(r.type, rows[0]);
  } catch (e) {
    throw classifyError(e);
  }
}
