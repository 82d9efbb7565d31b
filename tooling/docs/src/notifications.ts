// The runbook's notification part: each notifying event kind with its level, dedup key and subject;
// what was done and what to do for every kind (`EVENT_CATALOGUE`, @ccat/errors); and sample mails,
// rendered by the real email channel (a fake transport) from examples whose error text is the
// code's row of `ERROR_CODES`.
import { ERROR_CODES, EVENT_CATALOGUE, EVENT_KINDS, type ErrorCode, type EventKind } from '@ccat/errors';
import { createEmailChannel, toNotification, type Channel, type Notification } from '@ccat/notifier';
import {
  buildNotification,
  dedupKey,
  type NotificationFacts,
  type RecoveryEventKind,
} from '@ccat/recovery-handlers';
import { code, escapeCell, table } from './markdown.js';

/** Per notifying kind: the error code of its example, attempt, retries used, limit, delay (ms). */
const EXAMPLES: Readonly<Record<RecoveryEventKind, readonly [ErrorCode, number, number, number, number?]>> = {
  permanent_failure: ['CHECKSUM_MISMATCH', 2, 2, 2],
  stall_exhausted: ['STALLED_TOO_OFTEN', 3, 3, 3],
  stall_recovered: ['STALLED', 1, 2, 3, 41_000],
  retry_scheduled: ['CONNECTION_RESET', 0, 1, 3, 17_000],
};
const KINDS = Object.keys(EXAMPLES) as RecoveryEventKind[];
const TIME = Date.parse('2025-01-01T03:00:00.000Z');

/** The facts the recovery handlers would have for an example of `kind` on data_transfer `id`. */
function sample(kind: RecoveryEventKind, id = '1042'): NotificationFacts {
  const [errorCode, attempt, retryCount, maxRetries, delayMs] = EXAMPLES[kind];
  const row = ERROR_CODES[errorCode];
  return {
    ...{ kind, ref: { type: 'data_transfer', id, attempt }, errorCode, errorMessage: row.meaning },
    ...('class' in row && { errorClass: row.class }),
    ...{ retryCount, maxRetries, workerId: 'cologne-worker-1' },
    ...(delayMs !== undefined && { delayMs }),
  };
}

/** As the PostgreSQL outbox hands a row to the relay: with its id, time and operation. */
function delivered(facts: NotificationFacts, id: number): Notification {
  const time = new Date(TIME);
  return { ...toNotification({ ...buildNotification(facts), time }), id: String(id), operation: facts.ref };
}

/** A notification (or a digest) as the real email channel sends it, headers and all, in a text block. */
async function mail(delivery: Parameters<Channel['deliver']>[0]): Promise<string> {
  const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  const sent: string[] = [];
  const channel = createEmailChannel({
    config: { host: 'smtp.example.org', from: 'CCAT Recovery <ccat@example.org>' },
    transport: {
      sendMail(m) {
        const headers = Object.entries((m.headers ?? {}) as Record<string, string>).map(
          ([k, v]) => `${k}: ${v}`,
        );
        const to = ([] as unknown[]).concat(m.to ?? []).map(text);
        sent.push(`From: ${text(m.from)}`, `To: ${to.join(', ')}`, `Subject: ${text(m.subject)}`, ...headers);
        sent.push('', text(m.text).trimEnd());
        return Promise.resolve({ messageId: '<sample@example.org>', accepted: ['ops@example.org'] });
      },
    },
  });
  await channel.deliver(delivery, ['ops@example.org']);
  await channel.close();
  if (sent.length === 0) throw new Error('the email channel sent nothing');
  return ['```text', ...sent, '```'].join('\n');
}

/** The notification sections of the runbook (Markdown, before prettier). */
export async function renderNotifications(): Promise<string> {
  const text = (k: EventKind) =>
    EVENT_CATALOGUE[k] as (typeof EVENT_CATALOGUE)[EventKind] & { action?: string; advice?: string };
  const silent = EVENT_KINDS.filter((k) => text(k).recorded && !(k in EXAMPLES));
  const subject = (k: RecoveryEventKind) => escapeCell(code(buildNotification(sample(k)).subject));
  const lines = [
    '### Notifications the recovery system writes',
    '',
    table(
      ['event kind', 'level', 'dedup key', 'subject'],
      KINDS.map((k) => [code(k), text(k).level, code(dedupKey(k, '<type>', '<CODE>')), subject(k)]),
    ),
    '',
    `Decisions recorded in \`operation_events\` without a notification: ${silent.map(code).join(', ')}.`,
    '',
    'Each notification goes to the log, and to the mail recipients and Slack channels of every route that takes its level and kind (see `notifier.routes` in [configuration.md](configuration.md)). INFO goes only to the log unless a route takes it.',
    '',
    '### What was done and what to do, by event kind',
    '',
    'The "What was done" and "What to do" lines of a notification (`EVENT_CATALOGUE` in packages/errors/src/catalogue.ts); a permanent failure adds the advice for its error code (below).',
    '',
    table(
      ['event kind', 'level', 'recorded', 'what was done', 'what to do'],
      EVENT_KINDS.flatMap((k) => {
        const { level, recorded, action, advice } = text(k);
        if (action === undefined) return [];
        return [[code(k), level, recorded ? 'yes' : 'no', escapeCell(action), escapeCell(advice ?? '')]];
      }),
    ),
    '',
    '### What a mail looks like',
    '',
    'Rendered by the email channel from examples (default `subjectPrefix`). Slack messages carry the same fields.',
    '',
  ];
  for (const [i, k] of KINDS.entries())
    lines.push(`#### \`${k}\``, '', await mail({ notification: delivered(sample(k), 5000 + i) }), '');
  const leader = delivered(sample('permanent_failure'), 5000 + KINDS.length);
  const examples = ['1042', '1043', '1047'].map((id, i) => {
    const f = sample('permanent_failure', id);
    const time = new Date(TIME + i * 60_000);
    return { id: String(5100 + i), subject: buildNotification(f).subject, time, operation: f.ref };
  });
  const lastAt = new Date(TIME + 9 * 60_000);
  const digest = { dedupKey: leader.dedupKey ?? '', count: 37, firstAt: leader.time, lastAt, examples };
  lines.push(
    '#### Digest',
    '',
    'The first notification of a dedup key is sent at once and opens a window of `notifier.dedup.windowMs`; the alike ones that follow inside the window are folded into one digest, sent when the window closes:',
    '',
    await mail({ notification: leader, digest }),
    '',
  );
  return lines.join('\n');
}
