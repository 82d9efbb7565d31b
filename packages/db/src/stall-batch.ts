// Batched stall recovery: the monitor's counterpart of the worker's group commit (batcher.ts). A
// site that loses power leaves tens of thousands of attempts stalled; recovering them one
// transaction each is bounded by round trips and WAL flushes, not by SQL. Here a chunk of one type
// is locked in one statement and recovered in one more, every row still fenced on its own status
// and attempt, with its event row and outbox row written in that same statement (the one writer).
import { truncate } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import type { ErrorInfo, EventDetails, NotificationInput } from './events.js';
import { classified } from './internal/classified.js';
import { eventValues, insertEvent, insertNotification, notificationValues } from './internal/row-writer.js';
import { fence, setList, TRANSITIONS } from './internal/state-machine.js';
import { stallStateColumns, toStallState, type RawStallState } from './internal/state-sql.js';
import { MAX_MESSAGE, MAX_NAME } from './limits.js';
import {
  OPERATION_TABLES,
  parseAttempt,
  parseOperationId,
  parseOperationType,
  type OperationType,
} from './operation-types.js';
import { storedText } from './sanitize.js';
import type { Database } from './schema.js';
import type { StallState } from './snapshot.js';

/**
 * One stalled attempt's decided recovery: `stall` (pending k+1 after `delayMs`, retry counted),
 * `sharedStall` (pending k+1, stall_count+1, run_alone := `runAlone`; issue 13.4) or `fail` (failed).
 */
export interface StallRecoveryRow {
  readonly id: string;
  readonly attempt: number;
  readonly transition: 'stall' | 'sharedStall' | 'fail';
  /** `sharedStall` only: whether the operation runs alone from now on (default false). */
  readonly runAlone?: boolean;
  /** Milliseconds until the next attempt is due (ignored for `fail`). */
  readonly delayMs: number;
  readonly error: ErrorInfo;
  readonly event: EventDetails;
  readonly notification: NotificationInput;
}

/** What lockInProgressMany found: rows it locked, and rows still in progress that another transaction holds. */
export interface LockedInProgress {
  /** Rows in progress at their given attempt, now locked by the caller's transaction, in id order. */
  readonly locked: StallState[];
  /**
   * Refs still in progress at their given attempt but locked by another transaction (a worker in its
   * completion, another monitor, an operator's session): skipped, not waited for. Still due: the
   * caller retries them later. An id asked for at another attempt is not busy (that attempt moved on).
   */
  readonly busy: { readonly id: string; readonly attempt: number }[];
}

/**
 * Locks (SELECT … FOR UPDATE SKIP LOCKED, in id order) the rows of `type` still in progress at their
 * given attempt and returns their StallState (counters and claim); it never waits for a row lock: a row another transaction holds is
 * reported in `busy` (read without a lock: one more statement, only when some row was not locked).
 * The others (finished, moved on) are in neither list. Run it in the transaction that then calls
 * recoverStalledMany. Throws a ValidationError for a bad id or attempt, a classified error when the
 * database refuses.
 */
export async function lockInProgressMany(
  db: Kysely<Database>,
  type: OperationType,
  refs: readonly { readonly id: string; readonly attempt: number }[],
): Promise<LockedInProgress> {
  const t = parseOperationType(type);
  // Each (id, attempt) once, in id order (the order rows are locked in; ids are canonical decimals).
  const pairs = new Set(refs.map((r) => `${parseOperationId(r.id)}:${parseAttempt(r.attempt)}`));
  const keys = [...pairs].map((k) => k.split(':') as [string, string]);
  keys.sort(([a], [b]) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
  const ids = keys.map(([id]) => id);
  const attempts = keys.map(([, attempt]) => Number(attempt));
  // Driven by the array: one primary-key lookup per element (LATERAL). Joined as a set, the planner
  // may read the whole in-progress index for every chunk (its statistics lag a mass stall), which made
  // a site's recovery quadratic in the number of tasks in flight.
  const rows = (lock: boolean) => sql`
    FROM unnest(${ids}::bigint[], ${attempts}::int[]) WITH ORDINALITY AS r(id, attempt, n)
    CROSS JOIN LATERAL (
      SELECT ${lock ? stallStateColumns(t) : sql`id`} FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE id = r.id AND ${fence('stall', t, sql`r.attempt`)}${lock ? sql` FOR UPDATE SKIP LOCKED` : sql``}
    ) x ORDER BY r.n`;
  return classified(async () => {
    const { rows: found } = await sql<RawStallState>`SELECT x.* ${rows(true)}`.execute(db);
    const locked = found.map((r) => toStallState(t, r));
    if (locked.length === ids.length) return { locked, busy: [] };
    const got = new Set(locked.map((r) => r.id));
    // A plain read never waits for a row lock: in progress at the attempt, yet not locked by us.
    const rest = await sql<{ id: string; attempt: number }>`
      SELECT x.id::text AS id, r.attempt ${rows(false)}`.execute(db);
    return { locked, busy: rest.rows.filter((r) => !got.has(r.id)) };
  });
}

/** The per-row input of recoverStalledMany, in the order each row's array carries them, with their SQL types. */
const STALL_COLUMNS = [
  ['id', 'bigint'],
  ['attempt', 'int'],
  ['transition', 'text'],
  ['delay_s', 'float8'],
  ['error_code', 'text'],
  ['error_message', 'text'],
  ['event', 'text'],
  ['code', 'text'],
  ['error_class', 'text'],
  ['message', 'text'],
  ['retryable', 'bool'],
  ['worker_id', 'text'],
  ['level', 'text'],
  ['event_kind', 'text'],
  ['subject', 'text'],
  ['body', 'text'],
  ['dedup_key', 'text'],
  ['run_alone', 'bool'],
] as const;
const COLUMN_TYPES: Record<string, string> = {
  ...Object.fromEntries(STALL_COLUMNS),
  context: 'jsonb',
  n_context: 'jsonb',
};

/**
 * Applies decided stall recoveries of one type in ONE statement: `stall` rows in_progress(k) →
 * pending(k+1) (retry counted, due after delayMs), `sharedStall` rows the same with stall_count+1
 * instead of a retry, `fail` rows in_progress(k) → failed; each fenced
 * on its own status and attempt, and for exactly the rows it changed, their operation_events row
 * and outbox row (bounded and redacted by the one writer). Rows that no longer match the fence are
 * left alone and absent from the answer. At most one row per id. Returns the rows' StallState after the change
 * by id. Throws a ValidationError for a bad id, attempt or delay, a classified error when the
 * database refuses (nothing applied then).
 */
export async function recoverStalledMany(
  db: Kysely<Database>,
  type: OperationType,
  rows: readonly StallRecoveryRow[],
): Promise<Map<string, StallState>> {
  const t = parseOperationType(type);
  if (rows.length === 0) return new Map();
  // The chunk travels as ONE JSON document, an array per row (jsonb_array_elements): node-postgres
  // would otherwise escape every element of twenty arrays, and the storable-parameter pass walk
  // each of them; the context documents (storable JSON text from storedJson) are spliced in as is.
  const names = [...STALL_COLUMNS.map(([c]) => c), 'context', 'n_context'];
  const json = rows.map((r) => {
    if (!Number.isFinite(r.delayMs) || r.delayMs < 0)
      throw new RangeError(`delayMs must be a finite non-negative number, got ${r.delayMs}`);
    const kind = TRANSITIONS[r.transition].event;
    const [event, code, errorClass, message, retryable, context, workerId] = eventValues(
      kind,
      r.event,
      r.error,
    );
    const [level, eventKind, subject, body, nContext, dedupKey] = notificationValues(r.notification);
    const scalars = [
      parseOperationId(r.id),
      parseAttempt(r.attempt),
      r.transition,
      r.delayMs / 1000,
      truncate(r.error.code, MAX_NAME),
      // The row's last error is the event's message unless the event says otherwise: redacted once,
      // sent once (NULL: the event's message, COALESCE below).
      r.event.message === undefined && message !== null ? null : storedText(r.error.message, MAX_MESSAGE),
      event,
      code,
      errorClass,
      message,
      retryable,
      workerId,
      level,
      eventKind,
      subject,
      body,
      dedupKey,
      r.runAlone === true,
    ];
    return `${JSON.stringify(scalars).slice(0, -1)},${String(context)},${String(nContext)}]`;
  });
  // Prefixed, so no name of v meets a column of the table in the UPDATE … FROM v … RETURNING.
  const v = (c: string) => sql`v.${sql.id(`v_${c}`)}`;
  const { table } = OPERATION_TABLES[t];
  const update = (name: StallRecoveryRow['transition']) => sql`
    UPDATE ${sql.table(table)} AS t SET ${setList(name, t, {
      nextAttemptAt: sql`now() + make_interval(secs => ${v('delay_s')})`,
      errorCode: v('error_code'),
      errorMessage: sql`COALESCE(${v('error_message')}, ${v('message')})`,
      runAlone: v('run_alone'),
    })}
    FROM v WHERE t.id = v.v_id AND v.v_transition = ${name} AND ${fence(name, t, v('attempt'), 't')}
    RETURNING ${stallStateColumns(t)}`;
  const event = ['event', 'code', 'error_class', 'message', 'retryable', 'context', 'worker_id'];
  const note = ['level', 'event_kind', 'subject', 'body', 'n_context', 'dedup_key'];
  const target = { type: sql.lit(t), id: v('id'), attempt: v('attempt') };
  const from = sql`u JOIN v ON v.v_id = u.id`;
  // Each row an array in STALL_COLUMNS order then the two contexts; read by position.
  const fields = sql.join(
    names.map((c, i) =>
      COLUMN_TYPES[c] === 'jsonb'
        ? sql`r.value -> ${sql.lit(i)} AS ${sql.id(`v_${c}`)}`
        : sql`(r.value ->> ${sql.lit(i)})::${sql.raw(COLUMN_TYPES[c] ?? 'text')} AS ${sql.id(`v_${c}`)}`,
    ),
  );
  return classified(async () => {
    const result = await sql<RawStallState>`
      WITH v AS (
        SELECT ${fields} FROM jsonb_array_elements(${`[${json.join(',')}]`}::jsonb) AS r ORDER BY 1
      ), s AS (${update('stall')}), f AS (${update('fail')}), h AS (${update('sharedStall')}),
      u AS (SELECT * FROM s UNION ALL SELECT * FROM f UNION ALL SELECT * FROM h),
      e AS (${insertEvent(target, event.map(v), from)}),
      n AS (${insertNotification(note.map(v), target, { from })})
      SELECT * FROM u`.execute(db);
    return new Map(result.rows.map((r) => [String(r.id), toStallState(t, r)]));
  });
}
