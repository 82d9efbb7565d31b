// Over 300 lines: one operation's history is four reads (row, events, notifications, Redis) and their typed shapes, kept together as one query.
// One operation's whole history, as plain data: its row (status, attempt, retry count, times, last
// error), its events (operation_events, oldest first), its notifications (outbox rows) and what Redis
// knows about it now (the heartbeat member of its current attempt, its worker's health). Read-only.
// `ccat-recovery show` and the dashboard's history page both render this.
import {
  OPERATION_TABLES,
  parseOperationId,
  parseOperationType,
  type Database,
  type OperationStatus,
  type OperationType,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { heartbeatKeys, ServiceHealthReader, type RedisClient } from '@ccat/heartbeat';
import { isConnectionError } from '@ccat/service';
import { sql, type Kysely } from 'kysely';
import { unavailable, type Source, type Unavailable } from './sources.js';

/** The operation row: its state columns and row times. */
export interface HistoryRow {
  readonly status: OperationStatus;
  readonly attempt: number;
  readonly retryCount: number;
  readonly maxRetries: number | null;
  readonly claimedBy: string | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly nextAttemptAt: Date | null;
  readonly scheduledAt: Date | null;
  readonly startedAt: Date | null;
  readonly finishedAt: Date | null;
  readonly lastSeenAt: Date | null;
  readonly lastErrorCode: string | null;
  readonly lastErrorMessage: string | null;
  /**
   * The attempt whose failure event recorded the last error (the newest event with that error
   * code); null when there is no last error or no such event.
   */
  readonly lastErrorAttempt: number | null;
  /**
   * True when the last error is not the row's present state: the row is no longer failed (it was
   * retried and completed, or waits to run again), so the error is from an earlier attempt.
   */
  readonly lastErrorIsEarlier: boolean;
}

/** One operation_events row. */
export interface HistoryEvent {
  readonly id: string;
  readonly at: Date;
  readonly attempt: number;
  /** The decision: retry_scheduled, permanent_failure, stall_recovered, manual_retry, … */
  readonly event: string;
  readonly errorCode: string | null;
  readonly errorClass: string | null;
  readonly retryable: boolean | null;
  readonly message: string | null;
  /** The worker (or `cli:<operator>`, or the monitor) that wrote it. */
  readonly workerId: string | null;
}

/** One outbox row about this operation (a digest that summarises it is not listed). */
export interface HistoryNotification {
  readonly id: string;
  readonly createdAt: Date;
  readonly level: string;
  readonly kind: string;
  readonly subject: string;
  /** pending, sent, failed, digested, … (the outbox's status). */
  readonly status: string;
  readonly attempts: number;
  readonly sentAt: Date | null;
  readonly lastError: string | null;
}

/** What Redis knows now about the current attempt. */
export interface HistoryLive {
  /** The heartbeat member `${type}:${id}:${attempt}` of the row's current attempt. */
  readonly member: string;
  /** Whether the member is in the deadline set (the task is tracked as in flight). */
  readonly tracked: boolean;
  /** ms until the heartbeat deadline (negative: passed); null when not tracked. */
  readonly deadlineInMs: number | null;
  readonly workerId: string | null;
  readonly host: string | null;
  readonly pid: number | null;
  readonly queue: string | null;
  /** The last progress value reported (any JSON), and how long ago it last changed (ms). */
  readonly progress: unknown;
  readonly progressAgeMs: number | null;
  /** The worker's health entry: alive, dead, stopped; null when the worker never reported one. */
  readonly workerStatus: string | null;
  readonly workerLastSeenAgoMs: number | null;
}

/** The whole history; `live` is null when Redis was unreachable (listed in `unavailable`). */
export interface OperationHistory {
  readonly type: OperationType;
  readonly id: string;
  readonly row: HistoryRow;
  /** Oldest first, at most `limit`. */
  readonly events: readonly HistoryEvent[];
  readonly eventsTotal: number;
  /** Oldest first, at most `limit`. */
  readonly notifications: readonly HistoryNotification[];
  readonly notificationsTotal: number;
  readonly live: HistoryLive | null;
  readonly unavailable: readonly Unavailable[];
}

/** Thrown by readHistory for an id that has no operation of that type. */
export class OperationNotFoundError extends Error {
  constructor(
    readonly type: OperationType,
    readonly id: string,
  ) {
    super(`no ${type} operation with id ${id}`);
    this.name = 'OperationNotFoundError';
  }
}

async function readRow(db: Kysely<Database>, type: OperationType, id: string): Promise<HistoryRow | null> {
  const { table, prefix } = OPERATION_TABLES[type];
  const c = (name: string) => sql.ref(`${prefix}${name}`);
  const { rows } = await sql<{
    status: OperationStatus;
    attempt: number;
    retry_count: number;
    max_retries: number | null;
    claimed_by: string | null;
    created_at: Date;
    updated_at: Date;
    next_attempt_at: Date | null;
    scheduled_at: Date | null;
    started_at: Date | null;
    finished_at: Date | null;
    last_seen_at: Date | null;
    last_error_code: string | null;
    last_error_message: string | null;
    last_error_attempt: number | null;
  }>`
    SELECT ${c('status')} AS status, ${c('attempt')} AS attempt, ${c('retry_count')} AS retry_count,
      ${c('max_retries')} AS max_retries, ${c('claimed_by')} AS claimed_by, created_at, updated_at,
      ${c('next_attempt_at')} AS next_attempt_at, ${c('scheduled_at')} AS scheduled_at,
      ${c('started_at')} AS started_at, ${c('finished_at')} AS finished_at, ${c('last_seen_at')} AS last_seen_at,
      ${c('last_error_code')} AS last_error_code, ${c('last_error_message')} AS last_error_message,
      (SELECT e.attempt FROM operation_events e
        WHERE e.operation_type = ${type} AND e.operation_id = ${id}::bigint
          AND e.error_code = ${c('last_error_code')}
        ORDER BY e.id DESC LIMIT 1) AS last_error_attempt
    FROM ${sql.table(table)} WHERE id = ${id}::bigint AND ${c('status')} IS NOT NULL`.execute(db);
  const r = rows[0];
  if (r === undefined) return null;
  return {
    status: r.status,
    attempt: r.attempt,
    retryCount: r.retry_count,
    maxRetries: r.max_retries,
    claimedBy: r.claimed_by,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    nextAttemptAt: r.next_attempt_at,
    scheduledAt: r.scheduled_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    lastSeenAt: r.last_seen_at,
    lastErrorCode: r.last_error_code,
    lastErrorMessage: r.last_error_message,
    lastErrorAttempt: r.last_error_attempt,
    lastErrorIsEarlier: r.last_error_code !== null && r.status !== 'failed',
  };
}

async function readEvents(db: Kysely<Database>, type: OperationType, id: string, limit: number) {
  const [rows, total] = await Promise.all([
    db
      .selectFrom('operation_events')
      .select(['id', 'created_at', 'attempt', 'event', 'error_code', 'error_class', 'retryable', 'message'])
      .select('worker_id')
      .where('operation_type', '=', type)
      .where('operation_id', '=', id)
      .orderBy('id', 'asc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('operation_events')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('operation_type', '=', type)
      .where('operation_id', '=', id)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    events: rows.map((e): HistoryEvent => ({
      id: String(e.id),
      at: e.created_at,
      attempt: e.attempt,
      event: e.event,
      errorCode: e.error_code,
      errorClass: e.error_class,
      retryable: e.retryable,
      message: e.message,
      workerId: e.worker_id,
    })),
    total: Number(total.n),
  };
}

async function readNotifications(db: Kysely<Database>, type: OperationType, id: string, limit: number) {
  const [rows, total] = await Promise.all([
    db
      .selectFrom('notifications')
      .select(['id', 'created_at', 'level', 'event_kind', 'subject', 'status', 'attempts', 'sent_at'])
      .select('last_error')
      .where('operation_type', '=', type)
      .where('operation_id', '=', id)
      .orderBy('id', 'asc')
      .limit(limit)
      .execute(),
    db
      .selectFrom('notifications')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('operation_type', '=', type)
      .where('operation_id', '=', id)
      .executeTakeFirstOrThrow(),
  ]);
  return {
    notifications: rows.map((n): HistoryNotification => ({
      id: String(n.id),
      createdAt: n.created_at,
      level: n.level,
      kind: n.event_kind,
      subject: n.subject,
      status: n.status,
      attempts: n.attempts,
      sentAt: n.sent_at,
      lastError: n.last_error,
    })),
    total: Number(total.n),
  };
}

const text = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** The details hash entry, read defensively: a field of the wrong type is shown as unknown. */
function parseDetails(raw: string | null): Record<string, unknown> {
  if (raw === null) return {};
  try {
    const v: unknown = JSON.parse(raw);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** `${changedAtMs}:${json}` (the emitter's format); anything else is no progress. */
function parseProgress(raw: string | null, now: number): { value: unknown; ageMs: number | null } {
  const colon = raw?.indexOf(':') ?? -1;
  if (raw === null || raw === undefined || colon <= 0) return { value: null, ageMs: null };
  const changedAt = Number(raw.slice(0, colon));
  try {
    return {
      value: JSON.parse(raw.slice(colon + 1)) as unknown,
      ageMs: Number.isFinite(changedAt) ? now - changedAt : null,
    };
  } catch {
    return { value: null, ageMs: null };
  }
}

async function readLive(
  redis: RedisClient,
  keyPrefix: string,
  member: string,
  claimedBy: string | null,
): Promise<HistoryLive> {
  const keys = heartbeatKeys({ keyPrefix });
  const [time, deadline, details, progress] = await Promise.all([
    redis.time(),
    redis.zscore(keys.deadlines, member),
    redis.hget(keys.details, member),
    redis.hget(keys.progress, member),
  ]);
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  const d = parseDetails(details);
  const p = parseProgress(progress, now);
  const workerId = text(d.workerId) ?? text(d.emitterId) ?? claimedBy;
  const health = workerId === null ? undefined : await new ServiceHealthReader({ redis, keyPrefix }).list();
  const service = health?.services.find((s) => s.serviceType === 'worker' && s.serviceName === workerId);
  const deadlineMs = deadline === null ? Number.NaN : Number(deadline);
  return {
    member,
    tracked: deadline !== null,
    deadlineInMs: Number.isFinite(deadlineMs) ? deadlineMs - now : null,
    workerId,
    host: text(d.host),
    pid: typeof d.pid === 'number' ? d.pid : null,
    queue: text(d.queue),
    progress: p.value,
    progressAgeMs: p.ageMs,
    workerStatus: service?.status ?? null,
    workerLastSeenAgoMs: service?.lastSeenAgoMs ?? null,
  };
}

/**
 * One operation's history. `type` and `id` are validated (@ccat/db's parsers throw a
 * ConfigurationError-class error naming the bad value); an id with no row of that type throws
 * OperationNotFoundError. `limit` bounds the events and the notifications listed (the totals count
 * all). PostgreSQL errors propagate; Redis unreachable leaves `live` null and is listed in
 * `unavailable` (a Redis Source that is not ok counts the same).
 */
export async function readHistory(deps: {
  readonly db: Kysely<Database>;
  readonly redis: Source<RedisClient>;
  /** Where the workers' heartbeats live (config keyPrefix). */
  readonly keyPrefix: string;
  readonly type: string;
  readonly id: string;
  readonly limit: number;
}): Promise<OperationHistory> {
  const type = parseOperationType(deps.type);
  const id = parseOperationId(deps.id);
  const row = await readRow(deps.db, type, id);
  if (row === null) throw new OperationNotFoundError(type, id);
  const [events, notifications] = await Promise.all([
    readEvents(deps.db, type, id, deps.limit),
    readNotifications(deps.db, type, id, deps.limit),
  ]);
  const down: Unavailable[] = [];
  let live: HistoryLive | null = null;
  if (!deps.redis.ok) down.push(deps.redis.unavailable);
  else {
    try {
      live = await readLive(deps.redis.client, deps.keyPrefix, `${type}:${id}:${row.attempt}`, row.claimedBy);
    } catch (e) {
      if (!isConnectionError(classifyError(e))) throw e;
      down.push(unavailable('Redis', deps.redis.where, e));
    }
  }
  return {
    type,
    id,
    row,
    events: events.events,
    eventsTotal: events.total,
    notifications: notifications.notifications,
    notificationsTotal: notifications.total,
    live,
    unavailable: down,
  };
}
