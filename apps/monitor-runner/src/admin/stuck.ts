// What is stuck now, one row per operation with the reason, for `status` and the dashboard.
import {
  OPERATION_TYPES,
  readOperation,
  staleInProgress,
  staleScheduled,
  waitingInQueues,
  type Database,
  type OperationType,
} from '@ccat/db';
import { formatDuration } from '@ccat/errors';
import type { Kysely } from 'kysely';
import type { UnservedQueue } from './unserved-queues.js';

/** Why a row is stuck (see {@link readStuck} for the precise rules). */
export type StuckKind =
  'heartbeat_expired' | 'progress_stalled' | 'no_heartbeat' | 'scheduled_unclaimed' | 'unserved_queue';

const KIND_ORDER: readonly StuckKind[] = [
  'heartbeat_expired',
  'progress_stalled',
  'no_heartbeat',
  'scheduled_unclaimed',
  'unserved_queue',
];

export interface StuckRow {
  readonly operationType: OperationType;
  readonly operationId: string;
  readonly attempt: number;
  readonly status: string;
  /** Time in its current status (in_progress: since its claim; scheduled: since dispatch; pending: since it became pending, backoff included). */
  readonly ageMs: number | null;
  readonly workerId: string | null;
  /** Whether that worker's health record is alive; null when there is no worker or Redis is down. */
  readonly workerAlive: boolean | null;
  readonly kinds: readonly StuckKind[];
  /** One line: status first, then why, e.g. "in_progress, heartbeat 93 s past its deadline, worker w-3 not alive". */
  readonly reason: string;
}

export interface Stuck {
  /** Rows found stuck (after de-duplication); a lower bound when `more` is true. */
  readonly total: number;
  /** True when a source had more rows than it was asked for (each is read up to `limit`). */
  readonly more: boolean;
  /** In-progress rows first, then scheduled_unclaimed, then unserved_queue; the longest in its status first within each; at most `limit`. */
  readonly rows: readonly StuckRow[];
  /** False when Redis was unreachable: heartbeat-based and queue-based reasons are missing. */
  readonly complete: boolean;
}

/** A heartbeat member found by the scans (from status's Redis section). */
export interface StuckTask {
  readonly kind: 'expired' | 'progress_stalled';
  readonly operationType: OperationType | null;
  readonly operationId: string | null;
  readonly attempt: number | null;
  readonly workerId: string | null;
  readonly forMs: number | null;
}

export interface StuckInput {
  readonly db: Kysely<Database>;
  /** Null when Redis is unreachable. */
  readonly redis: {
    readonly tasks: readonly StuckTask[];
    /** Live worker ids (health records `alive`). */
    readonly aliveWorkers: ReadonlySet<string>;
    /** Which of the given members are in the heartbeat set (ZMSCORE). */
    readonly tracked: (members: readonly string[]) => Promise<readonly boolean[]>;
    readonly unserved: readonly UnservedQueue[];
  } | null;
  /** monitor.livenessTimeoutMs: an in_progress row silent this long with no heartbeat member is stuck. */
  readonly livenessTimeoutMs: number;
  /** monitor.scheduleTimeoutMs: a scheduled row unclaimed this long is stuck. */
  readonly scheduleTimeoutMs: number;
  readonly limit: number;
}

const since = (at: Date | null, now: number): number | null =>
  at === null ? null : Math.max(0, now - at.getTime());

/**
 * The operations stuck now. A row is **stuck** when nothing in the system will move it on by
 * itself within its bound, or the bound it is waiting on has passed:
 * - `heartbeat_expired`: in_progress and its heartbeat member is past its deadline (its process is
 *   silent for the liveness bound: crashed, frozen, partitioned);
 * - `progress_stalled`: in_progress, its process beats, but its progress has not changed for its
 *   progress timeout;
 * - `no_heartbeat`: in_progress with no heartbeat member and no sign of life in the database for
 *   `livenessTimeoutMs` (Redis lost it, or the task died before its first beat);
 * - `scheduled_unclaimed`: scheduled and not claimed within `scheduleTimeoutMs` (its job was lost);
 * - `unserved_queue`: pending or scheduled in a queue no live worker serves (it would wait forever).
 * A pending row waiting out its backoff in a served queue, a scheduled row inside its schedule
 * timeout and an in_progress row that beats and progresses are not stuck. The first three are
 * what a running monitor recovers on its next pass; the last two need a worker.
 *
 * Each source is read up to `limit` rows (so `total` is a lower bound when `more`); a row found by
 * several rules is listed once with every reason. A heartbeat member whose row has moved on is not
 * listed. Read-only. Throws the classified database error (Redis errors are the caller's to catch
 * in `redis.tracked`).
 */
export async function readStuck(input: StuckInput): Promise<Stuck> {
  const { db, redis, limit } = input;
  const now = Date.now();
  const found = new Map<string, StuckRow>();
  let more = false;
  const add = (row: StuckRow) => {
    const key = `${row.operationType}:${row.operationId}`;
    const had = found.get(key);
    if (had === undefined) found.set(key, row);
    else
      found.set(key, {
        ...had,
        kinds: [...had.kinds, ...row.kinds],
        reason: `${had.reason}; ${row.reason.replace(/^[a-z_]+, /, '')}`,
      });
  };
  const workerText = (workerId: string | null): { alive: boolean | null; text: string } => {
    if (workerId === null) return { alive: null, text: '' };
    if (redis === null) return { alive: null, text: `, worker ${workerId}` };
    const alive = redis.aliveWorkers.has(workerId);
    return { alive, text: `, worker ${workerId} ${alive ? 'alive' : 'not alive'}` };
  };

  for (const t of redis?.tasks ?? []) {
    if (t.operationType === null || t.operationId === null || t.attempt === null) continue;
    const row = await readOperation(db, t.operationType, t.operationId);
    if (row?.status !== 'in_progress' || row.attempt !== t.attempt) continue;
    const worker = workerText(t.workerId ?? row.claimedBy);
    const forText = t.forMs === null ? '' : ` ${formatDuration(t.forMs)}`;
    add({
      operationType: t.operationType,
      operationId: t.operationId,
      attempt: t.attempt,
      status: 'in_progress',
      ageMs: since(row.startedAt, now),
      workerId: t.workerId ?? row.claimedBy,
      workerAlive: worker.alive,
      kinds: [t.kind === 'expired' ? 'heartbeat_expired' : 'progress_stalled'],
      reason:
        t.kind === 'expired'
          ? `in_progress, heartbeat${forText} past its deadline${worker.text}`
          : `in_progress, progress unchanged for${forText}${worker.text}`,
    });
  }

  for (const type of OPERATION_TYPES) {
    if (redis !== null) {
      const stale = await staleInProgress(db, type, { olderThanMs: input.livenessTimeoutMs, limit });
      if (stale.length >= limit) more = true;
      const members = stale.map((r) => `${type}:${r.id}:${r.attempt}`);
      const tracked = members.length === 0 ? [] : await redis.tracked(members);
      for (const [i, r] of stale.entries()) {
        if (tracked[i] === true) continue;
        const worker = workerText(r.claimedBy);
        const silent = since(r.lastSeenAt, now);
        add({
          operationType: type,
          operationId: r.id,
          attempt: r.attempt,
          status: 'in_progress',
          ageMs: since(r.startedAt, now),
          workerId: r.claimedBy,
          workerAlive: worker.alive,
          kinds: ['no_heartbeat'],
          reason: `in_progress, no heartbeat in Redis, last sign of life ${silent === null ? 'never' : `${formatDuration(silent)} ago`}${worker.text}`,
        });
      }
    }
    const scheduled = await staleScheduled(db, type, { olderThanMs: input.scheduleTimeoutMs, limit });
    if (scheduled.length >= limit) more = true;
    for (const r of scheduled) {
      const age = since(r.scheduledAt, now);
      add({
        operationType: type,
        operationId: r.id,
        attempt: r.attempt,
        status: 'scheduled',
        ageMs: age,
        workerId: null,
        workerAlive: null,
        kinds: ['scheduled_unclaimed'],
        reason: `scheduled ${age === null ? '' : `${formatDuration(age)} `}ago, no claim (schedule timeout ${formatDuration(input.scheduleTimeoutMs)})`,
      });
    }
    const queues = (redis?.unserved ?? []).filter((u) => u.operationType === type).map((u) => u.queue);
    const waiting = await waitingInQueues(db, type, queues, { limit });
    if (waiting.length >= limit) more = true;
    for (const w of waiting) {
      const due = w.dueInMs > 0 ? `, next attempt due in ${formatDuration(w.dueInMs)}` : '';
      add({
        operationType: type,
        operationId: w.id,
        attempt: w.attempt,
        status: w.status,
        ageMs: since(w.since, now),
        workerId: null,
        workerAlive: null,
        kinds: ['unserved_queue'],
        reason: `${w.status}, no live worker serves queue ${w.queue}${due}`,
      });
    }
  }
  // In-progress rows first (a dead or hung worker's, which a monitor recovers), then scheduled ones
  // nobody claimed, then waiting work nothing serves; the longest in its status first within each.
  const rank = (r: StuckRow) => Math.min(...r.kinds.map((k) => KIND_ORDER.indexOf(k)));
  const rows = [...found.values()].sort((a, b) => rank(a) - rank(b) || (b.ageMs ?? 0) - (a.ageMs ?? 0));
  return { total: rows.length, more, rows: rows.slice(0, limit), complete: redis !== null };
}
