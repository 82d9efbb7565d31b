// The text form of `status`: warnings, what is stuck, then five sections, each a table or one line
// saying why it is empty.
import { OPERATION_STATUSES } from '@ccat/db';
import { formatDuration } from '@ccat/errors';
import type { Status, StatusCounts } from '../../admin/status.js';
import { compactJson, plural } from '../../format.js';
import { formatTable, right } from './table.js';

const age = (ms: number | null) => (ms === null ? '-' : formatDuration(ms));

function countsSection(counts: NonNullable<Status['counts']>): string {
  const columns = ['TYPE', ...OPERATION_STATUSES.map((s) => right(s.toUpperCase())), right('TOTAL')];
  const row = (name: string, c: StatusCounts) => [
    name,
    ...OPERATION_STATUSES.map((s) => String(c[s])),
    String(c.total),
  ];
  return [
    'Operations by type and status',
    formatTable(columns, [...counts.byType.map((c) => row(c.type, c)), row('all', counts.all)]),
  ].join('\n');
}

function notificationsSection(n: NonNullable<Status['notifications']>): string {
  if (n.undelivered.length === 0) return 'Undelivered notifications: none';
  const error = n.undelivered.find((u) => u.level === 'ERROR');
  const head =
    error === undefined
      ? 'Undelivered notifications'
      : `Undelivered notifications: ${plural(error.pending + error.failed, 'ERROR', 'ERRORs')} not delivered, the oldest ${formatDuration(error.oldestAgeMs)} old`;
  return [
    head,
    formatTable(
      ['LEVEL', right('RETRYING'), right('FAILED'), right('OLDEST'), 'OLDEST AT'],
      n.undelivered.map((u) => [
        u.level,
        String(u.pending),
        String(u.failed),
        `${formatDuration(u.oldestAgeMs)} ago`,
        u.oldestAt,
      ]),
    ),
  ].join('\n');
}

function inFlightSection(inFlight: NonNullable<Status['inFlight']>, limit: number): string {
  if (inFlight.total === 0) return 'In-flight tasks: none tracked in Redis';
  const shown = inFlight.tasks.length;
  const title = `In-flight tasks: ${inFlight.total} tracked in Redis${shown < inFlight.total ? `, the ${shown} nearest their deadline shown (--limit ${limit})` : ''}`;
  const table = formatTable(
    [
      'TASK',
      { title: 'WORKER', maxWidth: 32 },
      right('BEAT AGE'),
      right('DEADLINE IN'),
      { title: 'PROGRESS', maxWidth: 40 },
      right('PROGRESS AGE'),
    ],
    inFlight.tasks.map((t) => [
      t.corrupt === null ? t.taskId : `${t.taskId} (${t.corrupt})`,
      t.workerId ?? '-',
      age(t.heartbeatAgeMs),
      t.deadlineInMs === null
        ? '-'
        : t.deadlineInMs < 0
          ? `overdue ${formatDuration(-t.deadlineInMs)}`
          : formatDuration(t.deadlineInMs),
      compactJson(t.progress ?? undefined),
      age(t.progressAgeMs),
    ]),
  );
  return `${title}\n${table}`;
}

function stalledSection(stalled: NonNullable<Status['stalledNow']>): string {
  const head = `Stalled now: ${stalled.expiredTotal} heartbeat expired, ${stalled.progressStalledTotal} progress stalled`;
  const corrupt =
    stalled.corrupt > 0
      ? `\n  ${plural(stalled.corrupt, 'unreadable heartbeat entry', 'unreadable heartbeat entries')} (see the monitor's log)`
      : '';
  if (stalled.tasks.length === 0) return `${head}${corrupt}`;
  const table = formatTable(
    ['KIND', 'TASK', { title: 'WORKER', maxWidth: 32 }, right('FOR'), { title: 'PROGRESS', maxWidth: 40 }],
    stalled.tasks.map((t) => [
      t.kind,
      t.taskId,
      t.workerId ?? '-',
      age(t.forMs),
      compactJson(t.progress ?? undefined),
    ]),
  );
  return `${head} (a running monitor recovers them on its next pass)\n${table}${corrupt}`;
}

function stuckSection(stuck: NonNullable<Status['stuck']>, limit: number): string {
  const partial = stuck.complete ? '' : ' (Redis unreachable: heartbeat and queue reasons not checked)';
  if (stuck.total === 0) return `Stuck now: none${partial}`;
  const count = `${stuck.more ? 'at least ' : ''}${stuck.total}`;
  const shown =
    stuck.rows.length < stuck.total || stuck.more
      ? `, the ${stuck.rows.length} longest shown (--limit ${limit})`
      : '';
  return [
    `Stuck now: ${count}${shown}${partial}`,
    formatTable(
      ['TYPE', right('ID'), right('ATTEMPT'), right('AGE'), { title: 'WORKER', maxWidth: 32 }, 'WHY'],
      stuck.rows.map((r) => [
        r.operationType,
        r.operationId,
        String(r.attempt),
        age(r.ageMs),
        r.workerId ?? '-',
        r.reason,
      ]),
    ),
  ].join('\n');
}

function servicesSection(services: NonNullable<Status['services']>): string {
  if (services.length === 0) return 'Services: none registered';
  return [
    'Services',
    formatTable(
      ['TYPE', 'NAME', 'STATUS', right('LAST SEEN'), 'HOST', right('PID'), right('QUEUES')],
      services.map((s) => [
        s.serviceType,
        s.serviceName,
        s.status,
        `${formatDuration(s.lastSeenAgoMs)} ago`,
        s.host ?? '-',
        s.pid === null ? '-' : String(s.pid),
        s.queues === null ? '-' : String(s.queues.length),
      ]),
    ),
  ].join('\n');
}

/** The whole status as text; a section whose service was unreachable says so in one line. */
export function renderStatus(report: Status, limit: number): string {
  const down = (service: string) => `not available (${service} unreachable)`;
  return [
    ...(report.warnings.length > 0 ? [report.warnings.join('\n')] : []),
    report.stuck === null ? `Stuck now: ${down('PostgreSQL')}` : stuckSection(report.stuck, limit),
    report.counts === null
      ? `Operations by type and status: ${down('PostgreSQL')}`
      : countsSection(report.counts),
    report.notifications === null
      ? `Undelivered notifications: ${down('PostgreSQL')}`
      : notificationsSection(report.notifications),
    report.inFlight === null ? `In-flight tasks: ${down('Redis')}` : inFlightSection(report.inFlight, limit),
    report.stalledNow === null ? `Stalled now: ${down('Redis')}` : stalledSection(report.stalledNow),
    report.services === null ? `Services: ${down('Redis')}` : servicesSection(report.services),
  ].join('\n\n');
}
