// Batched stall recovery: the monitor's counterpart of the worker's group commit (batcher.ts). A
// site that loses power leaves tens of thousands of attempts stalled; recovering them one
// transaction each is bounded by round trips and WAL flushes, not by SQL. Here a chunk of one type
// is locked in one statement and recovered in one more, every row still fenced on its own status
// and attempt, with its event row and outbox row written in that same statement (the one writer).
import { truncate } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import type { ErrorInfo, EventDetails, NotificationInput } from './events.js';
import { classified } from './internal/classified.js';
import { eventValues, insertEvent, insertNotification, notificationValues } from './internal/records.js';
import { fence, setList, TRANSITIONS } from './internal/state-machine.js';
import { snapshotColumns, toSnapshot, type RawSnapshot } from './internal/state-sql.js';
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
import type { OperationSnapshot } from './snapshot.js';

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
  readonly locked: OperationSnapshot[];
  /**
   * Ids still in progress at their given attempt but locked by another transaction (a worker in its
   * completion, another monitor, an operator's session): skipped, not waited for. Still due: the
   * caller retries them later.
   */
  readonly busy: string[];
}

/**
 * Locks (SELECT … FOR UPDATE SKIP LOCKED, in id order) the rows of `type` still in progress at their
 * given attempt and returns them; it never waits for a row lock: a row another transaction holds is
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
  const ids = refs.map((r) => parseOperationId(r.id));
  const attempts = refs.map((r) => parseAttempt(r.attempt));
  const attempt = sql.ref(`${OPERATION_TABLES[t].prefix}attempt`);
  const where = sql`(id, ${attempt}) IN (SELECT * FROM unnest(${ids}::bigint[], ${attempts}::int[]))
        AND ${fence('stall', t, attempt)}`;
  return classified(async () => {
    const { rows } = await sql<RawSnapshot>`
      SELECT ${snapshotColumns(t)} FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${where} ORDER BY id FOR UPDATE SKIP LOCKED`.execute(db);
    const locked = rows.map((r) => toSnapshot(t, r));
    if (locked.length === new Set(ids).size) return { locked, busy: [] };
    const got = new Set(locked.map((r) => r.id));
    // A plain read never waits for a row lock: in progress at the attempt, yet not locked by us.
    const rest = await sql<{ id: string }>`SELECT id::text AS id FROM ${sql.table(OPERATION_TABLES[t].table)}
      WHERE ${where}`.execute(db);
    return { locked, busy: rest.rows.map((r) => r.id).filter((id) => !got.has(id)) };
  });
}

/**
 * Applies decided stall recoveries of one type in ONE statement: `stall` rows in_progress(k) →
 * pending(k+1) (retry counted, due after delayMs), `sharedStall` rows the same with stall_count+1
 * instead of a retry, `fail` rows in_progress(k) → failed; each fenced
 * on its own status and attempt, and for exactly the rows it changed, their operation_events row
 * and outbox row (bounded and redacted by the one writer). Rows that no longer match the fence are
 * left alone and absent from the answer. At most one row per id. Returns the rows after the change
 * by id. Throws a ValidationError for a bad id, attempt or delay, a classified error when the
 * database refuses (nothing applied then).
 */
export async function recoverStalledMany(
  db: Kysely<Database>,
  type: OperationType,
  rows: readonly StallRecoveryRow[],
): Promise<Map<string, OperationSnapshot>> {
  const t = parseOperationType(type);
  if (rows.length === 0) return new Map();
  const columns = rows.map((r) => {
    if (!Number.isFinite(r.delayMs) || r.delayMs < 0)
      throw new RangeError(`delayMs must be a finite non-negative number, got ${r.delayMs}`);
    const kind = TRANSITIONS[r.transition].event;
    return [
      parseOperationId(r.id),
      parseAttempt(r.attempt),
      r.transition,
      r.delayMs / 1000,
      truncate(r.error.code, MAX_NAME),
      storedText(r.error.message, MAX_MESSAGE),
      ...eventValues(kind, r.event, r.error),
      ...notificationValues(r.notification),
      r.runAlone === true,
    ];
  });
  const p = columns[0]!.map((_, c) => columns.map((row) => row[c]));
  // Prefixed, so no name of v meets a column of the table in the UPDATE … FROM v … RETURNING.
  const v = (c: string) => sql`v.${sql.id(`v_${c}`)}`;
  const { table } = OPERATION_TABLES[t];
  const update = (name: StallRecoveryRow['transition']) => sql`
    UPDATE ${sql.table(table)} AS t SET ${setList(name, t, {
      nextAttemptAt: sql`now() + make_interval(secs => ${v('delay_s')})`,
      errorCode: v('error_code'),
      errorMessage: v('error_message'),
      runAlone: v('run_alone'),
    })}
    FROM v WHERE t.id = v.v_id AND v.v_transition = ${name} AND ${fence(name, t, v('attempt'), 't')}
    RETURNING ${snapshotColumns(t)}`;
  const event = ['event', 'code', 'error_class', 'message', 'retryable', 'context', 'worker_id'];
  const note = ['level', 'event_kind', 'subject', 'body', 'n_context', 'dedup_key'];
  const names = ['id', 'attempt', 'transition', 'delay_s', 'error_code', 'error_message', ...event, ...note];
  const target = { type: sql.lit(t), id: v('id'), attempt: v('attempt') };
  const from = sql`u JOIN v ON v.v_id = u.id`;
  return classified(async () => {
    const result = await sql<RawSnapshot>`
      WITH v AS (
        SELECT * FROM unnest(${p[0]}::bigint[], ${p[1]}::int[], ${p[2]}::text[], ${p[3]}::float8[],
          ${p[4]}::text[], ${p[5]}::text[], ${p[6]}::text[], ${p[7]}::text[], ${p[8]}::text[],
          ${p[9]}::text[], ${p[10]}::bool[], ${p[11]}::jsonb[], ${p[12]}::text[], ${p[13]}::text[],
          ${p[14]}::text[], ${p[15]}::text[], ${p[16]}::text[], ${p[17]}::jsonb[], ${p[18]}::text[],
          ${p[19]}::bool[])
        AS v(${sql.join([...names, 'run_alone'].map((c) => sql.id(`v_${c}`)))})
        ORDER BY v_id
      ), s AS (${update('stall')}), f AS (${update('fail')}), h AS (${update('sharedStall')}),
      u AS (SELECT * FROM s UNION ALL SELECT * FROM f UNION ALL SELECT * FROM h),
      e AS (${insertEvent(target, event.map(v), from)}),
      n AS (${insertNotification(note.map(v), target, { from })})
      SELECT * FROM u`.execute(db);
    return new Map(result.rows.map((r) => [String(r.id), toSnapshot(t, r)]));
  });
}
