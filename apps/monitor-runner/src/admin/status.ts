// Over 300 lines: the status's one shape (its sections' types) and their reads, which share the source handling.
// What the system is doing now: operation counts and undelivered notifications (PostgreSQL),
// in-flight tasks, stalls and service health (Redis), what is stuck and why, and waiting work no
// live worker serves. Read-only: stalled tasks are shown, never
// recovered (that is the monitor's job, fenced). The one write is the heartbeat package's own: a scan
// moves an unreadable member into its corrupt hash, as the monitor's scans do.
import {
  countUndeliveredNotifications,
  countsByTypeAndStatus,
  OPERATION_STATUSES,
  OPERATION_TYPES,
  parseOperationKey,
  type Database,
  type OperationRef,
  type OperationStatus,
  type OperationType,
  type StatusCount,
  type WaitingQueue,
  waitingByQueue,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import {
  HeartbeatScanner,
  ServiceHealthReader,
  type ProgressInfo,
  type ProgressValue,
  type RedisClient,
  type TaskDetails,
} from '@ccat/heartbeat';
import { isConnectionError } from '@ccat/service';
import type { Kysely } from 'kysely';
import { unavailable, type Source, type Unavailable } from './sources.js';
import { readStuck, type Stuck } from './stuck.js';
import { unservedQueues, unservedWarnings, type UnservedQueue } from './unserved-queues.js';

export type StatusCounts = Record<OperationStatus | 'total', number>;

export interface TaskRow {
  readonly taskId: string;
  readonly operationType: OperationType | null;
  readonly operationId: string | null;
  readonly attempt: number | null;
  readonly workerId: string | null;
  readonly host: string | null;
  readonly pid: number | null;
  readonly progress: ProgressValue | null;
  readonly progressAgeMs: number | null;
}

export interface InFlightRow extends TaskRow {
  readonly heartbeatAgeMs: number | null;
  /** Negative when the deadline has passed. */
  readonly deadlineInMs: number | null;
  readonly corrupt: string | null;
}

export interface StalledRow extends TaskRow {
  /** `expired`: no beat before the deadline; `progress_stalled`: beats, but progress stopped. */
  readonly kind: 'expired' | 'progress_stalled';
  /** How far past the heartbeat deadline (expired) or since progress last changed (progress_stalled). */
  readonly forMs: number | null;
}

/** The system now. A section is null when its service was unreachable (listed in `unavailable`). */
export interface Status {
  readonly counts: {
    readonly byType: readonly ({ readonly type: OperationType } & StatusCounts)[];
    readonly all: StatusCounts;
  } | null;
  /**
   * Outbox notifications not delivered, by level (only levels that have some): `pending` rows are
   * being retried or are due; `failed` rows were given up. `oldestAt` is the oldest one's creation
   * time (ISO).
   */
  readonly notifications: {
    readonly undelivered: readonly {
      readonly level: string;
      readonly pending: number;
      readonly failed: number;
      readonly oldestAt: string;
      readonly oldestAgeMs: number;
    }[];
  } | null;
  readonly inFlight: { readonly total: number; readonly tasks: readonly InFlightRow[] } | null;
  readonly stalledNow: {
    readonly expiredTotal: number;
    readonly progressStalledTotal: number;
    readonly tasks: readonly StalledRow[];
    /** Entries the scans found unreadable (moved aside by the scanner, as the monitor's scans do). */
    readonly corrupt: number;
  } | null;
  readonly services:
    | readonly {
        readonly serviceType: string;
        readonly serviceName: string;
        readonly status: string;
        readonly lastSeenAgoMs: number;
        readonly host: string | null;
        readonly pid: number | null;
        /** The queues it serves; null when its record does not say (a service that serves none, or older). */
        readonly queues: readonly string[] | null;
      }[]
    | null;
  /**
   * What is stuck now, with why (rules: `readStuck` in admin/stuck.ts). Null when PostgreSQL was
   * unreachable; without Redis only the database's reasons (`complete` false).
   */
  readonly stuck: Stuck | null;
  /** Queues with waiting work and no live worker serving them (admin/unserved-queues.ts); null when unknown. */
  readonly unserved: readonly UnservedQueue[] | null;
  /** One `WARNING:` line per unserved queue; empty when all is served or unknown. */
  readonly warnings: readonly string[];
  readonly unavailable: readonly Unavailable[];
}

type FromRedis = Pick<Status, 'inFlight' | 'stalledNow' | 'services'> & {
  /** Which members are in the heartbeat set; on a Redis failure all count as tracked (none listed as stuck). */
  readonly tracked: (members: readonly string[]) => Promise<readonly boolean[]>;
};

const zeroCounts = (): StatusCounts => ({
  pending: 0,
  scheduled: 0,
  in_progress: 0,
  completed: 0,
  failed: 0,
  total: 0,
});

/** Every type and status, zeros included, so every consumer sees one shape. */
function tally(rows: readonly StatusCount[]): NonNullable<Status['counts']> {
  const byType = new Map(OPERATION_TYPES.map((t) => [t, zeroCounts()]));
  const all = zeroCounts();
  for (const r of rows) {
    const c = byType.get(r.type);
    if (c === undefined || !(OPERATION_STATUSES as readonly string[]).includes(r.status)) continue;
    c[r.status] += r.count;
    c.total += r.count;
    all[r.status] += r.count;
    all.total += r.count;
  }
  return { byType: OPERATION_TYPES.map((type) => ({ type, ...byType.get(type)! })), all };
}

function taskRow(
  taskId: string,
  details: TaskDetails | undefined,
  progress: ProgressInfo | undefined,
  serverTime: number,
): TaskRow {
  let ref: OperationRef | undefined;
  try {
    ref = parseOperationKey(taskId);
  } catch {
    // Another service's task under our prefix: listed by its raw id.
  }
  return {
    taskId,
    operationType: ref?.type ?? null,
    operationId: ref?.id ?? null,
    attempt: ref?.attempt ?? null,
    workerId: details?.workerId ?? details?.emitterId ?? null,
    host: details?.host ?? null,
    pid: details?.pid ?? null,
    progress: progress?.value ?? null,
    progressAgeMs: progress === undefined ? null : serverTime - progress.changedAt,
  };
}

async function readDatabase(
  db: Kysely<Database>,
): Promise<Pick<Status, 'counts' | 'notifications'> & { waiting: WaitingQueue[] }> {
  const counts = tally(await countsByTypeAndStatus(db));
  const now = Date.now();
  const undelivered = (await countUndeliveredNotifications(db)).map((u) => ({
    level: u.level,
    pending: u.pending,
    failed: u.failed,
    oldestAt: u.oldestAt.toISOString(),
    oldestAgeMs: Math.max(0, now - u.oldestAt.getTime()),
  }));
  return { counts, notifications: { undelivered }, waiting: await waitingByQueue(db) };
}

async function readRedis(redis: RedisClient, keyPrefix: string, limit: number): Promise<FromRedis> {
  const scanner = new HeartbeatScanner({ redis, keyPrefix });
  const list = await scanner.list({ limit });
  const expired = await scanner.scanExpired({ limit });
  const stalled = await scanner.scanStalled({ limit });
  const health = await new ServiceHealthReader({ redis, keyPrefix }).list();
  return {
    inFlight: {
      total: list.total,
      tasks: list.tasks.map((t) => ({
        ...taskRow(t.taskId, t.details, t.progress, list.serverTime),
        heartbeatAgeMs: t.heartbeatAgeMs ?? null,
        deadlineInMs: Number.isFinite(t.deadlineInMs) ? t.deadlineInMs : null,
        corrupt: t.corrupt ?? null,
      })),
    },
    stalledNow: {
      expiredTotal: expired.dueTotal,
      // A member whose progress stopped and whose heartbeat also expired counts once, as expired. The
      // scan says how many of those it met on its page only: beyond `limit` members they may count twice.
      progressStalledTotal: Math.max(0, stalled.dueTotal - stalled.skippedExpired),
      tasks: [
        ...expired.tasks.map((t) => ({
          ...taskRow(t.taskId, t.details, t.progress, expired.serverTime),
          kind: 'expired' as const,
          forMs: t.overdueMs,
        })),
        ...stalled.tasks.map((t) => ({
          ...taskRow(t.taskId, t.details, t.progress, stalled.serverTime),
          kind: 'progress_stalled' as const,
          forMs: t.stalledForMs ?? null,
        })),
      ],
      corrupt: expired.corrupt.length + stalled.corrupt.length,
    },
    services: health.services.map((s) => ({
      serviceType: s.serviceType,
      serviceName: s.serviceName,
      status: s.status,
      lastSeenAgoMs: s.lastSeenAgoMs,
      host: s.host ?? null,
      pid: s.pid ?? null,
      queues: s.queues ?? null,
    })),
    tracked: async (members) => {
      try {
        const scores = await redis.zmscore(scanner.keys.deadlines, ...members);
        return scores.map((x) => x !== null);
      } catch {
        return members.map(() => true);
      }
    },
  };
}

/** Runs `read` on a source; a connection failure (then or before) becomes an entry of `down`. */
async function fromSource<C, T>(
  source: Source<C>,
  service: Unavailable['service'],
  down: Unavailable[],
  read: (client: C) => Promise<T>,
): Promise<T | undefined> {
  if (!source.ok) {
    down.push(source.unavailable);
    return undefined;
  }
  try {
    return await read(source.client);
  } catch (e) {
    if (!isConnectionError(classifyError(e))) throw e;
    down.push(unavailable(service, source.where, e));
    return undefined;
  }
}

/**
 * The status, with what it could read: a service unreachable before or during the reads leaves its
 * sections null and is listed in `unavailable`. `limit`: in-flight, stalled and stuck rows listed
 * (each source of the stuck list is read up to it). Throws what is not a connection failure.
 */
export async function readStatus(deps: {
  readonly db: Source<Kysely<Database>>;
  readonly redis: Source<RedisClient>;
  /** Where the workers' heartbeats live (config keyPrefix). */
  readonly keyPrefix: string;
  readonly limit: number;
  /** monitor.livenessTimeoutMs and monitor.scheduleTimeoutMs: the bounds of the stuck rules. */
  readonly livenessTimeoutMs: number;
  readonly scheduleTimeoutMs: number;
}): Promise<Status> {
  const down: Unavailable[] = [];
  const db = await fromSource(deps.db, 'PostgreSQL', down, readDatabase);
  const redis = await fromSource(deps.redis, 'Redis', down, (r) => readRedis(r, deps.keyPrefix, deps.limit));
  const unserved =
    db === undefined || redis === undefined
      ? null
      : unservedQueues(
          db.waiting,
          redis.services!.map((s) => ({ ...s, queues: s.queues ?? undefined })),
        );
  const workers = (redis?.services ?? []).filter((s) => s.serviceType === 'worker');
  const stuck =
    db === undefined
      ? undefined
      : await fromSource(deps.db, 'PostgreSQL', down, (client) =>
          readStuck({
            db: client,
            redis:
              redis === undefined
                ? null
                : {
                    tasks: redis.stalledNow!.tasks,
                    aliveWorkers: new Set(
                      workers.filter((s) => s.status === 'alive').map((s) => s.serviceName),
                    ),
                    tracked: redis.tracked,
                    unserved: unserved ?? [],
                  },
            livenessTimeoutMs: deps.livenessTimeoutMs,
            scheduleTimeoutMs: deps.scheduleTimeoutMs,
            limit: deps.limit,
          }),
        );
  return {
    counts: db?.counts ?? null,
    notifications: db?.notifications ?? null,
    inFlight: redis?.inFlight ?? null,
    stalledNow: redis?.stalledNow ?? null,
    services: redis?.services ?? null,
    stuck: stuck ?? null,
    unserved,
    warnings: unserved === null ? [] : unservedWarnings(unserved),
    unavailable: down,
  };
}
