// The state machine of DESIGN §4 as one table. Each row is one fenced transition of an operation row:
// it applies only to a row in `from` that passes its `fence`, moves it `to` a status, writes `set`
// (besides updated_at), records `event` by default, and answers the row after the change or only its
// id. transitions.ts and the batcher build every statement from here, so the paths cannot drift.
import { sql, type RawBuilder } from 'kysely';
import { ValidationError, type AnyEventKind } from '@ccat/errors';
import {
  parseAttempt,
  parseOperationId,
  parseOperationType,
  type OperationRef,
  type OperationStatus,
  type OperationType,
} from '../operation-types.js';
import { stateColumn, type StateColumn } from './state-sql.js';

/** Values the caller brings, as SQL expressions (parameters, or the batcher's array columns). */
export type Arg = 'claimedBy' | 'progressBytes' | 'nextAttemptAt' | 'errorCode' | 'errorMessage' | 'runAlone';
/** What a column becomes: a constant, its value plus one, or a caller's value (left alone when absent). */
type Value = 'now()' | 'NULL' | '0' | '+1' | Arg;
/**
 * Beyond `status = from`: the caller's attempt (`attempt`), an attempt the caller may give (`attempt?`,
 * an operator's retry), or being due (`due`: pending rows have one owner, the dispatcher).
 */
type Fence = 'attempt' | 'attempt?' | 'due';

interface Transition {
  readonly from: OperationStatus;
  readonly to?: OperationStatus;
  readonly fence: Fence;
  readonly event: AnyEventKind;
  /** The whole row after the change, or only its id: the hot paths skip the snapshot (~15% cheaper). */
  readonly returns: 'row' | 'id';
  readonly set: Readonly<Partial<Record<StateColumn, Value>>>;
}

/** Every reset to pending: a new attempt (the old one is fenced out), due at `nextAttemptAt`. */
// prettier-ignore
const requeue = { attempt: '+1', next_attempt_at: 'nextAttemptAt', scheduled_at: 'NULL', claimed_by: 'NULL' } as const;
const error = { last_error_code: 'errorCode', last_error_message: 'errorMessage' } as const;

// Two stall transitions (issue 13.4, a deviation from DESIGN §4's single one): `stall` is a stall that
// is the operation's own (no progress in a live process, or its process died while it ran alone)
// and uses a retry; `sharedStall` is its process dying or freezing while it shared it with other
// tasks: nobody knows whose fault that was, so it counts in stall_count instead, and the policy
// decides (runAlone) when the operation must run alone from then on.

// prettier-ignore
export const TRANSITIONS = {
  dispatch:    { from: 'pending',     to: 'scheduled',   fence: 'due',      event: 'dispatched',        returns: 'row', set: { scheduled_at: 'now()' } },
  claim:       { from: 'scheduled',   to: 'in_progress', fence: 'attempt',  event: 'claimed',           returns: 'id',  set: { claimed_by: 'claimedBy', started_at: 'now()', last_seen_at: 'now()', finished_at: 'NULL', progress_bytes: '0' } },
  redispatch:  { from: 'scheduled',                      fence: 'attempt',  event: 'redispatched',      returns: 'id',  set: { scheduled_at: 'now()' } },
  progress:    { from: 'in_progress',                    fence: 'attempt',  event: 'progress',          returns: 'id',  set: { last_seen_at: 'now()', progress_bytes: 'progressBytes' } },
  complete:    { from: 'in_progress', to: 'completed',   fence: 'attempt',  event: 'completed',         returns: 'id',  set: { finished_at: 'now()', last_seen_at: 'now()' } },
  retry:       { from: 'in_progress', to: 'pending',     fence: 'attempt',  event: 'retry_scheduled',   returns: 'row', set: { ...requeue, retry_count: '+1', ...error } },
  stall:       { from: 'in_progress', to: 'pending',     fence: 'attempt',  event: 'stall_recovered',   returns: 'row', set: { ...requeue, retry_count: '+1', ...error } },
  sharedStall: { from: 'in_progress', to: 'pending',     fence: 'attempt',  event: 'stall_recovered',   returns: 'row', set: { ...requeue, stall_count: '+1', run_alone: 'runAlone', ...error } },
  release:     { from: 'in_progress', to: 'pending',     fence: 'attempt',  event: 'released',          returns: 'row', set: requeue },
  fail:        { from: 'in_progress', to: 'failed',      fence: 'attempt',  event: 'permanent_failure', returns: 'row', set: { finished_at: 'now()', ...error } },
  manualRetry: { from: 'failed',      to: 'pending',     fence: 'attempt?', event: 'manual_retry',      returns: 'row', set: { attempt: '+1', retry_count: '0', next_attempt_at: 'now()', finished_at: 'NULL', scheduled_at: 'NULL', claimed_by: 'NULL' } },
} as const satisfies Record<string, Transition>;

export type TransitionName = keyof typeof TRANSITIONS;

const CONSTANTS: Readonly<Record<string, RawBuilder<unknown>>> = {
  'now()': sql`now()`,
  NULL: sql`NULL`,
  '0': sql`0`,
};

/**
 * The SET list of `name` on `type`'s columns (updated_at included), with the caller's `args` and
 * `extra` items (a completion's record, recordSetList).
 */
export function setList(
  name: TransitionName,
  type: OperationType,
  args: Partial<Record<Arg, RawBuilder<unknown>>>,
  extra: readonly RawBuilder<unknown>[] = [],
): RawBuilder<unknown> {
  const t: Transition = TRANSITIONS[name];
  const sets = t.to === undefined ? [] : [sql`${stateColumn(type, 'status')} = ${sql.lit(t.to)}`];
  for (const [column, value] of Object.entries(t.set) as [StateColumn, Value][]) {
    const c = stateColumn(type, column);
    const expr = value === '+1' ? sql`${c} + 1` : (CONSTANTS[value] ?? args[value as Arg]);
    if (expr !== undefined) sets.push(sql`${c} = ${expr}`);
  }
  return sql.join([...sets, ...extra, sql`updated_at = now()`]);
}

/**
 * A status for a statement that finds its row by key: `(SELECT '<status>'::text)`, the same value but
 * an uncorrelated subquery the planner cannot see when it plans, so no partial index on the status
 * (the operation tables' due / in_progress / scheduled, the outbox's pending; migrations 0001–0002)
 * can stand in for the primary key. With statistics taken while few rows had that status (a mass
 * stall, a backlog), the planner took such an index as the cheaper path to one row and read every row
 * with the status for each statement (issue 13.3; packages/db/test/stall-batch.test.ts, outbox-store.test.ts).
 */
export const keyedStatus = (status: string): RawBuilder<unknown> => sql`(SELECT ${sql.lit(status)}::text)`;

/**
 * The WHERE conditions of `name` beyond the id, on `row` (an alias, or none), for `attempt` (an
 * expression). `access` says how the statement finds its rows: `key` (default: by id, beside these
 * conditions) or `scan` (by these conditions alone: the dispatcher's pick of due rows).
 * Keyed, the status is `keyedStatus`: the primary key is the only path to the row.
 */
export function fence(
  name: TransitionName,
  type: OperationType,
  attempt: RawBuilder<unknown> | undefined,
  row?: string,
  access: 'key' | 'scan' = 'key',
): RawBuilder<unknown> {
  const t: Transition = TRANSITIONS[name];
  const c = (n: StateColumn) =>
    row === undefined ? stateColumn(type, n) : sql`${sql.id(row)}.${stateColumn(type, n)}`;
  const status = access === 'key' ? keyedStatus(t.from) : sql.lit(t.from);
  const where = [sql`${c('status')} = ${status}`];
  if (t.fence === 'due') where.push(sql`${c('next_attempt_at')} <= now()`);
  else if (attempt !== undefined) where.push(sql`${c('attempt')} = ${attempt}`);
  else if (t.fence === 'attempt') throw new TypeError(`${name} is fenced on the attempt; none given`);
  return sql.join(where, sql` AND `);
}

/** The attempt an event of `name` is about, over the updated row `u`: the one before a reset's bump. */
export function eventAttempt(name: TransitionName): RawBuilder<unknown> {
  const t: Transition = TRANSITIONS[name];
  return t.set.attempt === '+1' ? sql`u.attempt - 1` : sql`u.attempt`;
}

/** The reference a transition is fenced on, checked and normalised (a bad type, id or attempt throws a ValidationError). */
export function checkRef(ref: OperationRef): OperationRef {
  return {
    type: parseOperationType(ref.type),
    id: parseOperationId(ref.id),
    attempt: parseAttempt(ref.attempt),
  };
}

/**
 * What a completion records on its own row besides its state: the operations' bookkeeping (issue
 * 13.5). The fenced completion statement writes it itself, so it is never written without the
 * completion and costs no statement of its own (the group commit sends one statement for a batch;
 * a `Finalize` is one round trip per row). Each type takes only its own field:
 * raw_data_package and data_transfer_package `checksum`, long_term_archive_transfer `verified`,
 * deletion `deleted`.
 */
export interface CompletionRecord {
  /** What a packaging operation wrote: its sha256 (64 hex digits) and its size in bytes. */
  readonly checksum?: { readonly sha256: string; readonly sizeBytes: number };
  /** The archive copy was read back and matched its checksum: verified_at = now(). */
  readonly verified?: true;
  /** The copy's files are gone: deleted_at = now(). */
  readonly deleted?: true;
}

/** The field of CompletionRecord each type may record, and the table columns it writes. */
const RECORDS: { readonly [T in OperationType]?: keyof CompletionRecord } = {
  raw_data_package: 'checksum',
  data_transfer_package: 'checksum',
  long_term_archive_transfer: 'verified',
  deletion: 'deleted',
};

/** A record's values in a fixed order (sha256, size_bytes, verified, deleted), NULL where absent. */
export type RecordValues = readonly [string | null, string | null, boolean | null, boolean | null];
export const NO_RECORD: RecordValues = [null, null, null, null];

/**
 * `record` checked against `type` and flattened to RecordValues. Throws a ValidationError for a
 * field the type does not record, a sha256 that is not 64 hex digits, or a size that is not a
 * non-negative safe integer.
 */
export function recordValues(type: OperationType, record: CompletionRecord | undefined): RecordValues {
  if (record === undefined) return NO_RECORD;
  // Each object's own fields read once, into a snapshot: what is checked is what is written (an
  // inherited field, a non-enumerable one or a getter that answers twice differently cannot slip by).
  const fields = ownFields(record, `a ${type} completion's record`);
  const own = RECORDS[type];
  for (const [field, value] of fields)
    if (value !== undefined && field !== own)
      throw new ValidationError(
        `a ${type} completion cannot record ${JSON.stringify(field).slice(0, 40)}${own === undefined ? ': it records nothing' : `; it records ${own}`}`,
      );
  const value = own === undefined ? undefined : fields.get(own);
  if (value === undefined) return NO_RECORD;
  if (own === 'checksum') {
    const checksum = ownFields(value, `${type} completion: checksum`);
    const sha256 = checksum.get('sha256');
    const sizeBytes = checksum.get('sizeBytes');
    if (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256))
      throw new ValidationError(`${type} completion: sha256 must be 64 hex digits`);
    if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < 0)
      throw new ValidationError(
        `${type} completion: sizeBytes must be a non-negative integer, got ${typeof sizeBytes === 'number' ? sizeBytes : typeof sizeBytes}`,
      );
    return [sha256.toLowerCase(), String(sizeBytes), null, null];
  }
  if (value !== true) throw new ValidationError(`${type} completion: ${own} must be true when given`);
  return [null, null, own === 'verified' ? true : null, own === 'deleted' ? true : null];
}

/** The own enumerable fields of `value`, each read once; a ValidationError naming `what` otherwise. */
function ownFields(value: unknown, what: string): Map<string, unknown> {
  if (typeof value !== 'object' || value === null)
    throw new ValidationError(`${what} must be an object, got ${value === null ? 'null' : typeof value}`);
  try {
    return new Map(Object.entries(value));
  } catch (e) {
    throw new ValidationError(`${what} could not be read: ${e instanceof Error ? e.message : typeof e}`);
  }
}

/**
 * The SET items that write a completion's record on `type`'s row, from the expressions of its
 * RecordValues (parameters, or the batcher's array columns): a NULL leaves the column as it is, so
 * one statement serves rows with and without a record. Nothing for a type that records nothing.
 */
export function recordSetList(
  type: OperationType,
  [sha256, sizeBytes, verified, deleted]: readonly RawBuilder<unknown>[],
): RawBuilder<unknown>[] {
  switch (RECORDS[type]) {
    case 'checksum':
      return [
        sql`sha256 = COALESCE(${sha256}::text, sha256)`,
        sql`size_bytes = COALESCE(${sizeBytes}::bigint, size_bytes)`,
      ];
    case 'verified':
      return [sql`verified_at = CASE WHEN ${verified}::bool THEN now() ELSE verified_at END`];
    case 'deleted':
      return [sql`deleted_at = CASE WHEN ${deleted}::bool THEN now() ELSE deleted_at END`];
    default:
      return [];
  }
}
