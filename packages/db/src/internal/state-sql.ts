// SQL for the state columns of an operation type, under their logical names.
import { sql, type RawBuilder } from 'kysely';
import { OPERATION_TABLES, type OperationStatus, type OperationType } from '../operation-types.js';
import type { OperationSnapshot, StallState } from '../snapshot.js';

export interface RawSnapshot {
  id: string;
  status: OperationStatus;
  attempt: number;
  retry_count: number;
  stall_count: number;
  run_alone: boolean;
  max_retries: number | null;
  next_attempt_at: Date;
  scheduled_at: Date | null;
  claimed_by: string | null;
  started_at: Date | null;
  finished_at: Date | null;
  last_seen_at: Date | null;
  progress_bytes: string;
  last_error_code: string | null;
  last_error_message: string | null;
  event_id?: string | null;
  notification_id?: string | null;
}

/** The columns of a StallState (the counters and the claim), under their logical names. */
const STALL_STATE_COLUMNS = [
  'status',
  'attempt',
  'retry_count',
  'stall_count',
  'run_alone',
  'max_retries',
  'claimed_by',
  'last_error_code',
] as const;

/** Every state column of a snapshot, under its logical name. */
export const STATE_COLUMNS = [
  ...STALL_STATE_COLUMNS,
  'next_attempt_at',
  'scheduled_at',
  'started_at',
  'finished_at',
  'last_seen_at',
  'progress_bytes',
  'last_error_message',
] as const;
export type StateColumn = (typeof STATE_COLUMNS)[number];

// Built once: these fragments are immutable and the transitions are a hot path.
const refs = new Map<string, RawBuilder<unknown>>();
const snapshots = new Map<OperationType, RawBuilder<unknown>>();

/** A state column of a type, by its logical name (`attempt` → `unpack_attempt` for unpack). */
export function stateColumn(type: OperationType, name: StateColumn): RawBuilder<unknown> {
  const column = `${OPERATION_TABLES[type].prefix}${name}`;
  let ref = refs.get(column);
  if (ref === undefined) refs.set(column, (ref = sql.ref(column)));
  return ref;
}

/** `id, <prefix>c AS c, ...` for the given state columns of a type; built once per (set, type). */
function columnList(
  names: readonly StateColumn[],
  cache: Map<OperationType, RawBuilder<unknown>>,
  type: OperationType,
): RawBuilder<unknown> {
  let cols = cache.get(type);
  if (cols === undefined) {
    cols = sql.join([sql.ref('id'), ...names.map((c) => sql`${stateColumn(type, c)} AS ${sql.id(c)}`)]);
    cache.set(type, cols);
  }
  return cols;
}

/** `id, <prefix>status AS status, ...`: a type's state under logical names. */
export const snapshotColumns = (type: OperationType): RawBuilder<unknown> =>
  columnList(STATE_COLUMNS, snapshots, type);

const stallStates = new Map<OperationType, RawBuilder<unknown>>();

/** `id, <prefix>status AS status, ...`: the columns of a StallState. */
export const stallStateColumns = (type: OperationType): RawBuilder<unknown> =>
  columnList(STALL_STATE_COLUMNS, stallStates, type);

export type RawStallState = Pick<RawSnapshot, 'id' | (typeof STALL_STATE_COLUMNS)[number]>;

export function toStallState(type: OperationType, r: RawStallState): StallState {
  return {
    type,
    id: String(r.id),
    status: r.status,
    attempt: r.attempt,
    retryCount: r.retry_count,
    stallCount: r.stall_count,
    runAlone: r.run_alone,
    maxRetries: r.max_retries,
    claimedBy: r.claimed_by,
    lastErrorCode: r.last_error_code,
  };
}

export function toSnapshot(type: OperationType, r: RawSnapshot): OperationSnapshot {
  return {
    ...toStallState(type, r),
    nextAttemptAt: r.next_attempt_at,
    scheduledAt: r.scheduled_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    lastSeenAt: r.last_seen_at,
    progressBytes: String(r.progress_bytes),
    lastErrorMessage: r.last_error_message,
  };
}
