// What every channel shows, as plain facts already redacted, normalised and cut. Channels only add
// their own escaping and layout, so no channel can forget a step.
import { eventKindText, formatDuration } from '@ccat/errors';
import { createRedactor, redactContext, type Redactor } from '../redact.js';
import type { ContentOptions, OutboundMessage } from '../channel.js';
import type { Notification } from '../notification.js';
import { cut, plainText, singleLine } from './text.js';

export interface ContentPolicy {
  readonly redact: Redactor;
  readonly maxSubjectLength: number;
  readonly maxBodyLength: number;
}

export interface Field {
  readonly label: string;
  readonly value: string;
}

export interface MessageFacts {
  readonly level: Notification['level'];
  readonly eventKind: string;
  /** One line. */
  readonly title: string;
  /** What failed, where, the error, the attempt (one line each). */
  readonly fields: readonly Field[];
  readonly action: string | undefined;
  readonly advice: string | undefined;
  /** Multi-line. */
  readonly body: string;
  /** Remaining context, one line each. */
  readonly details: readonly Field[];
  readonly time: string;
  readonly reference: string;
  readonly digest: DigestFacts | undefined;
}

export interface DigestFacts {
  readonly summary: string;
  readonly examples: readonly string[];
  readonly more: number;
}

const DEFAULT_REDACT = createRedactor();

export function contentPolicy(options: ContentOptions = {}): ContentPolicy {
  return {
    redact: options.redact ?? DEFAULT_REDACT,
    maxSubjectLength: options.maxSubjectLength ?? 200,
    maxBodyLength: options.maxBodyLength ?? 10_000,
  };
}

const WELL_KNOWN = new Set([
  'errorCode',
  'errorMessage',
  'errorClass',
  'where',
  'action',
  'advice',
  'attempt',
]);
const WHERE_KEYS = ['site', 'location', 'host', 'workerId'];

const str = (v: unknown): string | undefined =>
  typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;

export function renderFacts(message: OutboundMessage, policy: ContentPolicy): MessageFacts {
  const { notification: n, digest } = message;
  const r = policy.redact;
  const line = (text: string, max: number): string => cut(singleLine(r(text, max * 4 + 1000)), max);
  const ctx = redactContext(n.context, r);

  const code = str(ctx['errorCode']);
  const errorMessage = str(ctx['errorMessage']);
  const op = n.operation;
  const fields: Field[] = [];
  fields.push({ label: 'What failed', value: line(op ? `${op.type} ${op.id}` : n.eventKind, 200) });
  const where =
    str(ctx['where']) ??
    (WHERE_KEYS.map((k) => (str(ctx[k]) === undefined ? undefined : `${k} ${str(ctx[k])}`))
      .filter((x) => x !== undefined)
      .join(', ') ||
      undefined);
  if (where !== undefined) fields.push({ label: 'Where', value: line(where, 300) });
  const error = [code, errorMessage].filter((x) => x !== undefined).join(': ');
  if (error !== '') fields.push({ label: 'Error', value: line(error, 1000) });
  const attempt = op?.attempt ?? str(ctx['attempt']);
  if (attempt !== undefined) fields.push({ label: 'Attempt', value: line(String(attempt), 20) });

  const defaults = eventKindText(n.eventKind);
  const action = str(ctx['action']) ?? defaults?.action;
  const advice = str(ctx['advice']) ?? defaults?.advice;

  const details: Field[] = [];
  for (const [key, value] of Object.entries(ctx)) {
    if (WELL_KNOWN.has(key) || WHERE_KEYS.includes(key) || details.length >= 20) continue;
    details.push({
      label: line(key, 60),
      value: line(typeof value === 'string' ? value : JSON.stringify(value), 300),
    });
  }

  let title = n.subject;
  let digestFacts: DigestFacts | undefined;
  if (digest !== undefined) {
    const span = formatDuration(digest.lastAt.getTime() - digest.firstAt.getTime());
    const phrase = eventKindText(n.eventKind)?.phrase;
    title =
      phrase !== undefined
        ? `${digest.count} ${op ? `${op.type} ` : ''}${phrase}${code ? ` with ${code}` : ''} in ${span}`
        : `${digest.count} alike ${n.eventKind} notifications in ${span}`;
    const examples = digest.examples.map((e) => {
      const what = e.operation
        ? `${e.operation.type} ${e.operation.id}${e.operation.attempt === undefined ? '' : ` (attempt ${e.operation.attempt})`}`
        : `#${e.id}`;
      return line(`${what} at ${e.time.toISOString()}: ${e.subject}`, 300);
    });
    digestFacts = {
      summary:
        `${digest.count} alike notifications between ${digest.firstAt.toISOString()} and ` +
        `${digest.lastAt.toISOString()} (${span}). The first was sent on its own; this digest counts it too.`,
      examples,
      more: Math.max(0, digest.count - examples.length),
    };
  }

  return {
    level: n.level,
    eventKind: line(n.eventKind, 100),
    title: line(title, policy.maxSubjectLength),
    fields,
    action: action === undefined ? undefined : line(action, 500),
    advice: advice === undefined ? undefined : line(advice, 500),
    body: cut(plainText(r(n.body, policy.maxBodyLength * 4 + 1000)), policy.maxBodyLength),
    details,
    time: Number.isNaN(n.time.getTime()) ? 'unknown time' : n.time.toISOString(),
    reference: line(
      [n.id === undefined ? undefined : `notification ${n.id}`, n.dedupKey && `dedup key ${n.dedupKey}`]
        .filter(Boolean)
        .join(', ') || 'direct notification',
      300,
    ),
    digest: digestFacts,
  };
}
