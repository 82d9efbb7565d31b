// The runbook's notification part: each notifying event kind with its level, dedup key and subject;
// what was done and what to do for every kind (`EVENT_CATALOGUE`, the one catalogue of operator
// text in @ccat/errors); and sample mails, rendered by the real email channel with a fake transport.
import { EVENT_CATALOGUE, EVENT_KINDS, type EventKindText } from '@ccat/errors';
import { createEmailChannel, toNotification, type Channel, type Notification } from '@ccat/notifier';
import {
  buildNotification,
  dedupKey,
  type NotificationFacts,
  type RecoveryEventKind,
} from '@ccat/recovery-handlers';
import { code, escapeCell, table } from './markdown.js';

const op = (type: string, attempt: number) => ({ type, id: '1042', attempt });
/** One example of each notifying kind, as the recovery handlers build them. */
const SAMPLES: Readonly<Record<RecoveryEventKind, NotificationFacts>> = {
  permanent_failure: {
    kind: 'permanent_failure',
    ref: op('data_transfer', 2),
    errorCode: 'CHECKSUM_MISMATCH',
    errorClass: 'ChecksumVerificationError',
    errorMessage: 'transfer of tp-3-1001-10 arrived with a different sha256',
    retryCount: 2,
    maxRetries: 2,
    workerId: 'cologne-worker-1',
  },
  stall_exhausted: {
    kind: 'stall_exhausted',
    ref: op('unpack', 3),
    errorCode: 'STALLED_TOO_OFTEN',
    errorMessage: 'stalled: no heartbeat before its deadline (process dead or frozen)',
    retryCount: 3,
    maxRetries: 3,
    workerId: 'cologne-worker-2',
    detail: 'heartbeat_expired',
  },
  stall_recovered: {
    kind: 'stall_recovered',
    ref: op('unpack', 1),
    errorCode: 'STALLED',
    errorMessage: 'stalled: heartbeats continued but progress stopped (hung I/O)',
    retryCount: 2,
    maxRetries: 3,
    workerId: 'cologne-worker-2',
    delayMs: 41_000,
    detail: 'progress_stalled',
  },
  retry_scheduled: {
    kind: 'retry_scheduled',
    ref: op('data_transfer', 0),
    errorCode: 'CONNECTION_RESET',
    errorClass: 'NetworkError',
    errorMessage: 'read ECONNRESET',
    retryCount: 1,
    maxRetries: 3,
    workerId: 'chile-worker-1',
    delayMs: 17_000,
  },
};

/** As the PostgreSQL outbox hands a row to the relay: with its id, time and operation. */
function delivered(facts: NotificationFacts, id: number): Notification {
  const time = new Date('2025-01-01T03:00:00.000Z');
  return {
    ...toNotification({ ...buildNotification(facts), time }),
    id: String(id),
    operation: { ...facts.ref },
  };
}

/** A notification (or a digest) as the real email channel sends it, headers and all, in a text block. */
async function mail(delivery: Parameters<Channel['deliver']>[0]): Promise<string> {
  const text = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v));
  let sent: string[] | undefined;
  const channel = createEmailChannel({
    config: { host: 'smtp.example.org', from: 'CCAT Recovery <ccat@example.org>' },
    transport: {
      sendMail(m) {
        const headers = Object.entries((m.headers ?? {}) as Record<string, string>).map(
          ([k, v]) => `${k}: ${v}`,
        );
        const to = ([] as unknown[]).concat(m.to ?? []).map(text);
        sent = [`From: ${text(m.from)}`, `To: ${to.join(', ')}`, `Subject: ${text(m.subject)}`, ...headers];
        sent.push('', text(m.text).trimEnd());
        return Promise.resolve({ messageId: '<sample@example.org>', accepted: ['ops@example.org'] });
      },
    },
  });
  await channel.deliver(delivery, ['ops@example.org']);
  await channel.close();
  if (sent === undefined) throw new Error('the email channel sent nothing');
  return ['```text', ...sent, '```'].join('\n');
}

/** The notification sections of the runbook (Markdown, before prettier). */
export async function renderNotifications(): Promise<string> {
  const kinds = Object.keys(SAMPLES) as RecoveryEventKind[];
  const text = (k: string): EventKindText => EVENT_CATALOGUE[k as keyof typeof EVENT_CATALOGUE];
  const silent = EVENT_KINDS.filter((k) => text(k).recorded && !(k in SAMPLES));
  const lines = [
    '### Notifications the recovery system writes',
    '',
    table(
      ['event kind', 'level', 'dedup key', 'subject'],
      kinds.map((k) => [
        code(k),
        text(k).level,
        code(dedupKey(k, '<type>', '<CODE>')),
        escapeCell(code(buildNotification(SAMPLES[k]).subject)),
      ]),
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
      EVENT_KINDS.filter((k) => text(k).action !== undefined).map((k) => {
        const t = text(k);
        return [
          code(k),
          t.level,
          t.recorded ? 'yes' : 'no',
          escapeCell(t.action ?? ''),
          escapeCell(t.advice ?? ''),
        ];
      }),
    ),
    '',
    '### What a mail looks like',
    '',
    'Rendered by the email channel from examples (default `subjectPrefix`). Slack messages carry the same fields.',
    '',
  ];
  for (const [i, k] of kinds.entries())
    lines.push(`#### \`${k}\``, '', await mail({ notification: delivered(SAMPLES[k], 5000 + i) }), '');
  const leader = delivered(SAMPLES.permanent_failure, 5000 + kinds.length);
  const at = (minutes: number) => new Date(leader.time.getTime() + minutes * 60_000);
  const examples = [1042, 1043, 1047].map((n, i) => {
    const facts = { ...SAMPLES.permanent_failure, ref: { ...op('data_transfer', 2), id: String(n) } };
    return {
      id: String(5100 + i),
      subject: buildNotification(facts).subject,
      time: at(i),
      operation: facts.ref,
    };
  });
  const digest = {
    dedupKey: leader.dedupKey ?? '',
    count: 37,
    firstAt: leader.time,
    lastAt: at(9),
    examples,
  };
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
