// The text form of `show <type> <id>`: the row, then its events, its notifications and what Redis
// knows now, each a table or one line saying why it is empty. Messages are shown whole (wrapped by
// the terminal, cleaned of control characters by the table), not cut: this is where they are read.
import { formatDuration } from '@ccat/errors';
import type { OperationHistory } from '../../admin/history.js';
import { compactJson, formatTime, plural } from '../../format.js';
import { cleanCell, formatTable, right } from './table.js';

const age = (ms: number | null) => (ms === null ? '-' : formatDuration(Math.max(0, ms)));
const orDash = (v: string | number | null) => (v === null ? '-' : String(v));

/** The row's last error code, saying when it is from an earlier attempt than the row's state. */
function lastErrorText(r: OperationHistory['row']): string {
  if (r.lastErrorCode === null) return '-';
  if (!r.lastErrorIsEarlier) return r.lastErrorCode;
  const which = r.lastErrorAttempt === null ? 'an earlier attempt' : `attempt ${r.lastErrorAttempt}`;
  return `${r.lastErrorCode} (from ${which}, not the current one: the operation is ${r.status} now)`;
}

function rowSection(h: OperationHistory): string {
  const r = h.row;
  const fields: [string, string][] = [
    ['status', r.status],
    ['attempt', String(r.attempt)],
    ['retry count', `${r.retryCount}${r.maxRetries === null ? '' : ` of at most ${r.maxRetries}`}`],
    ['claimed by', orDash(r.claimedBy)],
    ['created', formatTime(r.createdAt)],
    ['updated', formatTime(r.updatedAt)],
    ['next attempt', r.status === 'pending' ? formatTime(r.nextAttemptAt) : '-'],
    ['scheduled', formatTime(r.scheduledAt)],
    ['started', formatTime(r.startedAt)],
    ['last seen', formatTime(r.lastSeenAt)],
    ['finished', formatTime(r.finishedAt)],
    ['last error', lastErrorText(r)],
    ['message', r.lastErrorMessage === null ? '-' : cleanCell(r.lastErrorMessage)],
  ];
  return [`${h.type} ${h.id}`, ...fields.map(([k, v]) => `  ${`${k}:`.padEnd(14)}${v}`)].join('\n');
}

function eventsSection(h: OperationHistory): string {
  if (h.events.length === 0) return 'Events: none';
  const shown = h.eventsTotal > h.events.length ? ` (the first ${h.events.length})` : '';
  return [
    `Events: ${plural(h.eventsTotal, 'event')}${shown}`,
    formatTable(
      ['AT', right('ATTEMPT'), 'EVENT', 'ERROR CODE', 'WORKER', 'MESSAGE'],
      h.events.map((e) => [
        formatTime(e.at),
        String(e.attempt),
        e.event,
        orDash(e.errorCode),
        orDash(e.workerId),
        orDash(e.message),
      ]),
    ),
  ].join('\n');
}

function notificationsSection(h: OperationHistory): string {
  if (h.notifications.length === 0) return 'Notifications: none';
  const shown = h.notificationsTotal > h.notifications.length ? ` (the first ${h.notifications.length})` : '';
  return [
    `Notifications: ${plural(h.notificationsTotal, 'notification')}${shown}`,
    formatTable(
      ['CREATED', 'LEVEL', 'KIND', 'STATUS', right('ATTEMPTS'), 'SENT', 'LAST ERROR'],
      h.notifications.map((n) => [
        formatTime(n.createdAt),
        n.level,
        n.kind,
        n.status,
        String(n.attempts),
        formatTime(n.sentAt),
        orDash(n.lastError),
      ]),
    ),
  ].join('\n');
}

function liveSection(h: OperationHistory): string {
  const l = h.live;
  if (l === null) return 'Now in Redis: unknown (Redis unreachable)';
  const worker =
    l.workerId === null
      ? '-'
      : `${l.workerId}${l.workerStatus === null ? '' : ` (${l.workerStatus}, seen ${age(l.workerLastSeenAgoMs)} ago)`}`;
  if (!l.tracked) return `Now in Redis: ${l.member} not tracked (no heartbeat); worker ${worker}`;
  const deadline =
    l.deadlineInMs === null
      ? '-'
      : l.deadlineInMs >= 0
        ? `in ${formatDuration(l.deadlineInMs)}`
        : `passed ${formatDuration(-l.deadlineInMs)} ago`;
  return [
    `Now in Redis: ${l.member} in flight`,
    `  worker:       ${worker}${l.host === null ? '' : ` on ${l.host}${l.pid === null ? '' : ` pid ${l.pid}`}`}`,
    `  queue:        ${orDash(l.queue)}`,
    `  deadline:     ${deadline}`,
    `  progress:     ${compactJson(l.progress, 80)}${l.progressAgeMs === null ? '' : `, changed ${age(l.progressAgeMs)} ago`}`,
  ].join('\n');
}

/** The whole history of one operation as text for a terminal. */
export function renderHistory(h: OperationHistory): string {
  return [rowSection(h), eventsSection(h), notificationsSection(h), liveSection(h)].join('\n\n');
}
