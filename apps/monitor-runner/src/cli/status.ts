// `status`: what the system is doing now. Counts come from PostgreSQL; in-flight tasks, stalls and
// service health from Redis. Read-only: stalled tasks are shown, never removed or recovered (that is
// the monitor's job, with the fenced transitions). The one write is the heartbeat package's own: a
// scan moves an unreadable member into its corrupt hash, as the monitor's scans do, so that it
// cannot block the range; valid members are never touched.
import {
  countUndeliveredNotifications,
  countsByTypeAndStatus,
  OPERATION_STATUSES,
  OPERATION_TYPES,
  parseOperationKey,
  type Database,
  type OperationRef,
  type StatusCount,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import {
  HeartbeatScanner,
  ServiceHealthReader,
  type ProgressInfo,
  type RedisClient,
  type TaskDetails,
} from '@ccat/heartbeat';
import type { Kysely } from 'kysely';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { EXIT, type ExitCode, type ServiceUnreachableError } from './exit-codes.js';
import { integerFlag, noPositionals } from './flags.js';
import { writeJson, type CommandIo } from './output.js';
import { isConnectionFailure, unreachable, type Connection } from './service-errors.js';
import type { InFlightRow, StalledRow, StatusCounts, StatusReport, TaskRow } from './status-report.js';
import { renderStatus } from './status-text.js';

export const statusSpec: CommandSpec = {
  name: 'status',
  summary:
    'operations by type and status, undelivered notifications, in-flight tasks, stalled tasks, services',
  options: { limit: { type: 'string' } },
  usage: `usage: ccat-recovery status [--limit N] [--json]

Operation counts by type and status and undelivered notifications by level, with the oldest
(PostgreSQL); in-flight tasks with heartbeat age and progress,
tasks stalled now (heartbeat deadline passed, or progress stopped) and services alive or dead (Redis).
Read-only. When Redis is down the database part is still shown, with a warning, and the exit code is 3.

  --limit N   in-flight and stalled tasks listed (default 20, 1 to 1000)`,
};

export interface StatusOptions {
  readonly limit: number;
}

export function parseStatusArgs(values: FlagValues, positionals: readonly string[]): StatusOptions {
  noPositionals(statusSpec, positionals);
  return { limit: integerFlag(statusSpec, values, 'limit', { min: 1, max: 1000, dflt: 20 }) };
}

export interface StatusDeps extends CommandIo {
  readonly db: Connection<Kysely<Database>>;
  readonly redis: Connection<RedisClient>;
  /** Where the workers' heartbeats live (config keyPrefix). */
  readonly keyPrefix: string;
}

const zeroCounts = (): StatusCounts => ({
  pending: 0,
  scheduled: 0,
  in_progress: 0,
  completed: 0,
  failed: 0,
  total: 0,
});

/** Every type and status, zeros included, so the table and the JSON keep one shape. */
function tally(rows: readonly StatusCount[]): NonNullable<StatusReport['counts']> {
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

async function readRedis(
  redis: RedisClient,
  keyPrefix: string,
  limit: number,
): Promise<Pick<StatusReport, 'inFlight' | 'stalledNow' | 'services'>> {
  const scanner = new HeartbeatScanner({ redis, keyPrefix });
  const list = await scanner.list({ limit });
  const expired = await scanner.scanExpired({ limit });
  const stalled = await scanner.scanStalled({ limit });
  const health = await new ServiceHealthReader({ redis, keyPrefix }).list();
  const inFlight = list.tasks.map((t): InFlightRow => ({
    ...taskRow(t.taskId, t.details, t.progress, list.serverTime),
    heartbeatAgeMs: t.heartbeatAgeMs ?? null,
    deadlineInMs: Number.isFinite(t.deadlineInMs) ? t.deadlineInMs : null,
    corrupt: t.corrupt ?? null,
  }));
  const stalledRows: StalledRow[] = [
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
  ];
  return {
    inFlight: { total: list.total, tasks: inFlight },
    stalledNow: {
      expiredTotal: expired.dueTotal,
      // A member whose progress stopped and whose heartbeat also expired counts once, as expired. The
      // scan says how many of those it met on its page only: beyond --limit members they may count twice.
      progressStalledTotal: Math.max(0, stalled.dueTotal - stalled.skippedExpired),
      tasks: stalledRows,
      corrupt: expired.corrupt.length + stalled.corrupt.length,
    },
    services: health.services.map((s) => ({
      serviceType: s.serviceType,
      serviceName: s.serviceName,
      status: s.status,
      lastSeenAgoMs: s.lastSeenAgoMs,
      host: s.host ?? null,
      pid: s.pid ?? null,
    })),
  };
}

/** Prints the status; exit 3 (after printing what it could) when PostgreSQL or Redis was unreachable. */
export async function runStatus(deps: StatusDeps, options: StatusOptions): Promise<ExitCode> {
  const unavailable: ServiceUnreachableError[] = [];
  let counts: StatusReport['counts'] = null;
  let notifications: StatusReport['notifications'] = null;
  if (deps.db.ok) {
    try {
      counts = tally(await countsByTypeAndStatus(deps.db.client));
      const now = Date.now();
      notifications = {
        undelivered: (await countUndeliveredNotifications(deps.db.client)).map((u) => ({
          level: u.level,
          pending: u.pending,
          failed: u.failed,
          oldestAt: u.oldestAt.toISOString(),
          oldestAgeMs: Math.max(0, now - u.oldestAt.getTime()),
        })),
      };
    } catch (e) {
      if (!isConnectionFailure(classifyError(e))) throw e;
      unavailable.push(unreachable('PostgreSQL', deps.db.where, e));
    }
  } else {
    unavailable.push(deps.db.error);
  }
  let fromRedis: Pick<StatusReport, 'inFlight' | 'stalledNow' | 'services'> = {
    inFlight: null,
    stalledNow: null,
    services: null,
  };
  if (deps.redis.ok) {
    try {
      fromRedis = await readRedis(deps.redis.client, deps.keyPrefix, options.limit);
    } catch (e) {
      if (!isConnectionFailure(classifyError(e))) throw e;
      unavailable.push(unreachable('Redis', deps.redis.where, e));
    }
  } else {
    unavailable.push(deps.redis.error);
  }
  const report: StatusReport = {
    command: 'status',
    counts,
    notifications,
    ...fromRedis,
    unavailable: unavailable.map((u) => ({ service: u.service, where: u.where, reason: u.reason })),
  };
  if (deps.json) writeJson(deps.out, report);
  else deps.out.out(renderStatus(report, options.limit));
  for (const u of unavailable) {
    const missing =
      u.service === 'Redis'
        ? 'in-flight tasks, stalls and services are not shown'
        : 'operation counts and undelivered notifications are not shown';
    deps.out.err(`ccat-recovery: warning: ${u.message}; ${missing}\n  ${u.hint}`);
  }
  return unavailable.length > 0 ? EXIT.unreachable : EXIT.ok;
}
