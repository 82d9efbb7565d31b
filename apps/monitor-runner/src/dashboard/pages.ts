// Over 300 lines: the dashboard's five pages (Now, Failures, history, Trends, Retry) as one renderer of the admin queries' data.
// The main content of each page, from the same plain data the CLI renders (admin/*.ts). Fields a
// page does not know by name (added to status or failures later) are rendered generically, so
// nothing the query returns is hidden. Every dynamic text goes through html.ts's escaping.
import { OPERATION_STATUSES } from '@ccat/db';
import { eventKindText, formatDuration } from '@ccat/errors';
import { currentStateText, type Failures } from '../admin/failures.js';
import type { OperationHistory } from '../admin/history.js';
import type { FailedOperation, RetryResult } from '../admin/retry.js';
import type { Status, StatusCounts } from '../admin/status.js';
import type { TrendBucket, Trends } from '../admin/trends.js';
import { formatPercent } from '../format.js';
import { generic, h, isoTime, table, words, type Html } from './html.js';

const age = (ms: number | null | undefined) =>
  ms === null || ms === undefined ? '-' : formatDuration(Math.max(0, ms));
const json = (v: unknown) => (v === null || v === undefined ? '-' : JSON.stringify(v));
const num = (n: number) => h`<span class="num">${n}</span>`;
const section = (title: string, body: Html, id?: string) =>
  h`<section${id === undefined ? h`` : h` id="${id}"`}><h2>${title}</h2>${body}</section>`;

/** A link to one operation's history page. */
const historyLink = (type: string, id: string, label = `${type} ${id}`) =>
  h`<a href="/operations/${encodeURIComponent(type)}/${encodeURIComponent(id)}">${label}</a>`;

const KNOWN_STATUS_KEYS = new Set([
  'stuck',
  'unserved',
  'counts',
  'notifications',
  'inFlight',
  'stalledNow',
  'services',
  'warnings',
  'unavailable',
]);

function unavailableNote(down: Status['unavailable']): Html {
  return h`${down.map((d) => h`<p class="warn">${d.service} is not reachable at ${d.where}: ${d.reason}</p>`)}`;
}

/** What is stuck now and why, longest first (the CLI's "Stuck now"); admin/stuck.ts has the rules. */
function stuckSection(stuck: NonNullable<Status['stuck']>): Html {
  const partial = stuck.complete ? '' : ' (Redis unreachable: heartbeat and queue reasons not checked)';
  const count = `${stuck.more ? 'at least ' : ''}${stuck.total}`;
  const shown =
    stuck.rows.length < stuck.total || stuck.more ? `, the ${stuck.rows.length} longest shown` : '';
  return section(
    `Stuck now: ${count}${shown}${partial}`,
    table(
      ['operation', 'status', 'attempt', 'for', 'worker', 'why'],
      stuck.rows.map((r) => [
        historyLink(r.operationType, r.operationId),
        r.status,
        r.attempt,
        age(r.ageMs),
        r.workerId === null
          ? '-'
          : r.workerAlive === false
            ? h`${r.workerId} <span class="bad">(not alive)</span>`
            : r.workerId,
        h`<span class="why">${r.reason}</span>`,
      ]),
      'none: everything waiting or running is within its bounds',
    ),
    'stuck',
  );
}

/** Queues with waiting work that no live worker serves (it would wait forever). */
function unservedSection(unserved: Status['unserved']): Html {
  if (unserved === null)
    return section('Work nothing serves', h`<p class="empty">unknown (Redis unreachable)</p>`, 'unserved');
  return section(
    `Work nothing serves: ${unserved.reduce((n, u) => n + u.pending + u.scheduled, 0)} waiting`,
    h`${table(
      ['queue', 'operation type', 'pending', 'scheduled'],
      unserved.map((u) => [u.queue, u.operationType, num(u.pending), num(u.scheduled)]),
      'none: every queue with waiting work has a live worker',
    )}${
      unserved.length === 0 ? h`` : h`<p class="advice">${eventKindText('work_unserved')?.advice ?? ''}</p>`
    }`,
    'unserved',
  );
}

/** Now: what is stuck and unserved first, then counts, in flight, stalled, services, undelivered notifications and any other field of Status. */
export function nowPage(s: Status): Html {
  const parts: Html[] = [unavailableNote(s.unavailable)];
  if (s.warnings.length > 0) parts.push(h`${s.warnings.map((w) => h`<p class="warn">${w}</p>`)}`);
  if (s.stuck !== null) parts.push(stuckSection(s.stuck));
  parts.push(unservedSection(s.unserved));
  if (s.counts !== null) {
    const cols = ['type', ...OPERATION_STATUSES, 'total'];
    const row = (name: string, c: StatusCounts) => [
      name,
      ...OPERATION_STATUSES.map((st) => num(c[st])),
      num(c.total),
    ];
    parts.push(
      section(
        'Operations by type and status',
        table(cols, [...s.counts.byType.map((c) => row(c.type, c)), row('all', s.counts.all)]),
        'counts',
      ),
    );
  }
  if (s.inFlight !== null)
    parts.push(
      section(
        `In flight: ${s.inFlight.total}`,
        table(
          [
            'operation',
            'attempt',
            'worker',
            'host',
            'heartbeat age',
            'deadline in',
            'progress',
            'progress age',
          ],
          s.inFlight.tasks.map((t) => [
            t.operationType !== null && t.operationId !== null
              ? historyLink(t.operationType, t.operationId)
              : t.taskId,
            t.attempt,
            t.workerId,
            t.host,
            age(t.heartbeatAgeMs),
            t.deadlineInMs === null
              ? '-'
              : t.deadlineInMs < 0
                ? `passed ${age(-t.deadlineInMs)} ago`
                : age(t.deadlineInMs),
            json(t.progress),
            age(t.progressAgeMs),
          ]),
        ),
        'in-flight',
      ),
    );
  if (s.stalledNow !== null)
    parts.push(
      section(
        `Stalled now: ${s.stalledNow.expiredTotal} heartbeat expired, ${s.stalledNow.progressStalledTotal} progress stopped`,
        table(
          ['operation', 'attempt', 'why', 'for', 'worker', 'progress'],
          s.stalledNow.tasks.map((t) => [
            t.operationType !== null && t.operationId !== null
              ? historyLink(t.operationType, t.operationId)
              : t.taskId,
            t.attempt,
            t.kind === 'expired'
              ? 'no heartbeat before its deadline'
              : 'progress stopped while its process beats',
            age(t.forMs),
            t.workerId,
            json(t.progress),
          ]),
        ),
        'stalled',
      ),
    );
  if (s.services !== null)
    parts.push(
      section(
        'Workers and monitors',
        table(
          ['type', 'name', 'status', 'last seen', 'host', 'pid', 'queues served'],
          s.services.map((v) => [
            v.serviceType,
            v.serviceName,
            v.status === 'alive' ? v.status : h`<span class="bad">${v.status}</span>`,
            `${age(v.lastSeenAgoMs)} ago`,
            v.host,
            v.pid,
            v.queues === null ? '-' : v.queues.join(', ') || 'none',
          ]),
        ),
        'services',
      ),
    );
  if (s.notifications !== null)
    parts.push(
      section(
        'Undelivered notifications',
        table(
          ['level', 'retrying', 'failed', 'oldest'],
          s.notifications.undelivered.map((u) => [
            u.level,
            num(u.pending),
            num(u.failed),
            `${age(u.oldestAgeMs)} ago (${u.oldestAt})`,
          ]),
          'none: every notification was delivered',
        ),
        'notifications',
      ),
    );
  for (const [key, value] of Object.entries(s)) {
    if (!KNOWN_STATUS_KEYS.has(key)) parts.push(section(words(key), generic(value), `status-${key}`));
  }
  return h`${parts}`;
}

const KNOWN_GROUP_KEYS = new Set([
  'errorCode',
  'operationType',
  'count',
  'firstAt',
  'lastAt',
  'advice',
  'examples',
]);
const KNOWN_EXAMPLE_KEYS = new Set([
  'operationId',
  'attempt',
  'event',
  'message',
  'at',
  'current',
  'retryCommand',
  'showCommand',
]);

/** A form that leads to the retry confirmation page (GET: nothing changes until confirmed). */
function retryButton(fields: Record<string, string>, label: string): Html {
  return h`<form class="inline" method="get" action="/retry">${Object.entries(fields).map(
    ([k, v]) => h`<input type="hidden" name="${k}" value="${v}">`,
  )}<button type="submit">${label}</button></form>`;
}

/** Failures: groups by error code and type over the window, their advice and examples linked to history. */
export function failuresPage(f: Failures, window: { since: string; canRetry: boolean }): Html {
  const form = h`<form method="get" action="/failures">window <input name="since" value="${window.since}" size="6">
    <button type="submit">show</button></form>`;
  if (f.groups.length === 0)
    return h`${form}<p class="empty">No failure events in the last ${window.since}.</p>`;
  return h`${form}<p>${f.totalEvents} failure events in ${f.groups.length} groups in the last ${window.since}</p>${f.groups.map(
    (g) => {
      const extra = Object.entries(g).filter(([k]) => !KNOWN_GROUP_KEYS.has(k));
      const exampleKeys = [
        ...new Set(g.examples.flatMap((x) => Object.keys(x)).filter((k) => !KNOWN_EXAMPLE_KEYS.has(k))),
      ];
      const commands = [
        ...new Set(g.examples.flatMap((x) => (x.retryCommand === null ? [] : [x.retryCommand]))),
      ];
      const bulk =
        window.canRetry && g.operationType !== ''
          ? retryButton(
              { type: g.operationType, code: g.errorCode, since: window.since },
              'retry failed ones…',
            )
          : h``;
      return section(
        `${g.errorCode} · ${g.operationType} · ${g.count} events`,
        h`<p>first ${isoTime(g.firstAt)}, last ${isoTime(g.lastAt)} ${bulk}</p>
        <p class="advice"><strong>To do:</strong> ${g.advice}</p>
        ${extra.map(([k, v]) => h`<div class="extra"><strong>${words(k)}:</strong> ${generic(v)}</div>`)}
        ${table(
          ['operation', 'attempt', 'event', 'at', 'now', 'message', ...exampleKeys.map(words)],
          g.examples.map((x) => [
            historyLink(g.operationType, x.operationId),
            x.attempt,
            x.event,
            isoTime(x.at),
            x.current?.status === 'failed'
              ? h`<span class="bad">${currentStateText(x)}</span>`
              : currentStateText(x),
            x.message,
            ...exampleKeys.map((k) => generic((x as unknown as Record<string, unknown>)[k])),
          ]),
        )}${
          commands.length === 0
            ? h``
            : h`<p>Failed now; retry with:</p><pre class="commands">${commands.join('\n')}</pre>`
        }`,
        `group-${g.errorCode}-${g.operationType}`,
      );
    },
  )}`;
}

/** One operation's whole history, with a retry button when it is failed and writes are allowed. */
export function historyPage(o: OperationHistory, canRetry: boolean): Html {
  const r = o.row;
  const retry =
    canRetry && r.status === 'failed'
      ? retryButton({ type: o.type, id: o.id }, 'retry this operation…')
      : h``;
  const l = o.live;
  return h`${unavailableNote(o.unavailable)}${section(
    `${o.type} ${o.id}`,
    h`<dl id="row">
      <dt>status</dt><dd id="row-status">${r.status}</dd>
      <dt>attempt</dt><dd id="row-attempt">${r.attempt}</dd>
      <dt>retry count</dt><dd>${r.retryCount}${r.maxRetries === null ? '' : ` of at most ${r.maxRetries}`}</dd>
      <dt>claimed by</dt><dd>${r.claimedBy}</dd>
      <dt>created</dt><dd>${isoTime(r.createdAt)}</dd><dt>updated</dt><dd>${isoTime(r.updatedAt)}</dd>
      <dt>started</dt><dd>${r.startedAt}</dd><dt>finished</dt><dd>${r.finishedAt}</dd>
      <dt>last error</dt><dd>${r.lastErrorCode}</dd><dt>message</dt><dd id="row-message">${r.lastErrorMessage}</dd>
    </dl><p>${retry}</p>`,
    'operation',
  )}${section(
    `Events: ${o.eventsTotal}`,
    table(
      ['at', 'attempt', 'event', 'error code', 'worker', 'message'],
      o.events.map((e) => [isoTime(e.at), e.attempt, e.event, e.errorCode, e.workerId, e.message]),
    ),
    'events',
  )}${section(
    `Notifications: ${o.notificationsTotal}`,
    table(
      ['created', 'level', 'kind', 'subject', 'status', 'attempts', 'sent', 'last error'],
      o.notifications.map((n) => [
        isoTime(n.createdAt),
        n.level,
        n.kind,
        n.subject,
        n.status,
        n.attempts,
        n.sentAt,
        n.lastError,
      ]),
    ),
    'history-notifications',
  )}${section(
    'Now in Redis',
    l === null
      ? h`<p class="empty">unknown (Redis unreachable)</p>`
      : h`<dl><dt>member</dt><dd>${l.member}</dd><dt>tracked</dt><dd>${l.tracked ? 'in flight' : 'not tracked'}</dd>
        <dt>worker</dt><dd>${l.workerId} ${l.workerStatus === null ? '' : `(${l.workerStatus}, seen ${age(l.workerLastSeenAgoMs)} ago)`}</dd>
        <dt>deadline in</dt><dd>${l.deadlineInMs === null ? '-' : l.deadlineInMs < 0 ? `passed ${age(-l.deadlineInMs)} ago` : age(l.deadlineInMs)}</dd>
        <dt>progress</dt><dd>${json(l.progress)} ${l.progressAgeMs === null ? '' : `(changed ${age(l.progressAgeMs)} ago)`}</dd></dl>`,
    'live',
  )}`;
}

/** One bar chart as inline SVG (no script): bucket starts along x, `value` as bars, max labelled. */
function chart(
  title: string,
  buckets: readonly TrendBucket[],
  value: (b: TrendBucket) => number | null,
  rate = false,
): Html {
  const W = 460;
  const H = 140;
  const pad = 24;
  const values = buckets.map(value);
  const max = rate ? 1 : Math.max(1, ...values.map((v) => v ?? 0));
  const bw = (W - pad) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => {
    const v = values[i];
    if (v === null || v === undefined) return h``;
    const bh = ((H - pad) * v) / max;
    return h`<rect class="bar${rate ? ' rate' : ''}" x="${(pad + i * bw + 1).toFixed(1)}" y="${(H - pad - bh).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${bh.toFixed(1)}"><title>${isoTime(b.at)}: ${rate ? formatPercent(v) : v}</title></rect>`;
  });
  const first = buckets[0];
  const last = buckets[buckets.length - 1];
  const total = values.reduce<number>((n, v) => n + (v ?? 0), 0);
  const caption = rate ? '' : ` (${total} in all)`;
  return h`<figure><figcaption><strong>${title}</strong>${caption}</figcaption>
    <svg role="img" aria-label="${title}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}">
    <text x="0" y="10">${rate ? '100%' : max}</text><text x="0" y="${H - pad}">0</text>
    <line x1="${pad}" y1="${H - pad}" x2="${W}" y2="${H - pad}" stroke="#d0d7de"/>${bars}
    <text x="${pad}" y="${H - 6}">${first === undefined ? '' : isoTime(first.at)}</text>
    <text x="${W}" y="${H - 6}" text-anchor="end">${last === undefined ? '' : isoTime(last.at)}</text></svg></figure>`;
}

/** Trends: per hour or per day, the six series as bar charts, and the figures as a table. */
export function trendsPage(t: Trends): Html {
  const b = t.buckets;
  const other = t.unit === 'hour' ? 'day' : 'hour';
  return h`<p>Per ${t.unit}, the last ${b.length} ${t.unit}s (UTC). <a href="/trends?unit=${other}">per ${other}</a></p>
  <div class="charts">
    ${chart('Recovery success rate', b, (x) => x.recoverySuccessRate, true)}
    ${chart('Retries scheduled', b, (x) => x.retriesScheduled)}
    ${chart('Stalls detected', b, (x) => x.stallsDetected)}
    ${chart('Permanent failures', b, (x) => x.permanentFailures)}
    ${chart('Notifications sent', b, (x) => x.notificationsSent)}
    ${chart('Notifications digested', b, (x) => x.notificationsDigested)}
  </div>${section(
    'Figures',
    table(
      ['bucket', 'success rate', 'settled', 'retries', 'stalls', 'permanent', 'sent', 'digested'],
      b
        .filter(
          (x) =>
            x.settled +
              x.retriesScheduled +
              x.stallsDetected +
              x.permanentFailures +
              x.notificationsSent +
              x.notificationsDigested >
            0,
        )
        .map((x) => [
          isoTime(x.at),
          formatPercent(x.recoverySuccessRate),
          x.settled,
          x.retriesScheduled,
          x.stallsDetected,
          x.permanentFailures,
          x.notificationsSent,
          x.notificationsDigested,
        ]),
      'nothing happened in this period',
    ),
    'trend-figures',
  )}`;
}

/** The confirmation step: what would be retried, and the admin token field that authorises it. */
export function retryConfirmPage(
  selection: { type: string; id?: string; code?: string; since?: string },
  rows: readonly FailedOperation[],
  total: number,
): Html {
  if (rows.length === 0) return h`<p class="empty">Nothing to retry: no failed operation matches.</p>`;
  const more = total > rows.length ? ` (${total} match; at most ${rows.length} at once)` : '';
  return section(
    `Retry ${rows.length} failed ${selection.type} operation${rows.length === 1 ? '' : 's'}?${more}`,
    h`${table(
      ['operation', 'attempt', 'retry count', 'error code', 'message', 'failed at'],
      rows.map((r) => [
        historyLink(selection.type, r.id),
        r.attempt,
        r.retryCount,
        r.lastErrorCode,
        r.lastErrorMessage,
        r.failedAt,
      ]),
    )}
    <form method="post" action="/retry" id="confirm-retry">
      <input type="hidden" name="type" value="${selection.type}">
      ${selection.code === undefined ? h`` : h`<input type="hidden" name="code" value="${selection.code}">`}
      ${selection.since === undefined ? h`` : h`<input type="hidden" name="since" value="${selection.since}">`}
      ${rows.map((r) => h`<input type="hidden" name="item" value="${r.id}:${r.attempt}">`)}
      <p>Each one goes back to pending (attempt+1, retry count 0) only if it is still failed at the attempt shown.</p>
      <label>admin token <input type="password" name="admin_token" autocomplete="off" required></label>
      <button type="submit" name="confirm" value="yes">Confirm retry</button>
    </form>`,
    'retry',
  );
}

/** What a retry did, operation by operation. */
export function retryResultPage(results: readonly RetryResult[]): Html {
  const retried = results.filter((r) => r.outcome === 'retried').length;
  return section(
    `Retried ${retried} of ${results.length}`,
    table(
      ['operation', 'outcome', 'before', 'after'],
      results.map((r) => [
        historyLink(r.type, r.id),
        r.outcome,
        r.before === null ? '-' : `${r.before.status} at attempt ${r.before.attempt}`,
        r.after === null ? '-' : `${r.after.status} at attempt ${r.after.attempt}`,
      ]),
    ),
    'retry-result',
  );
}

/** A short error page body. */
export function messagePage(message: string): Html {
  return h`<p class="bad" id="message">${message}</p>`;
}
