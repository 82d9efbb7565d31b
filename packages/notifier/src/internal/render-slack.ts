// Slack Block Kit with every untrusted text escaped for mrkdwn (see escapeSlack) and fitted to
// Slack's limits (3000 characters per section text, 2000 per field) after escaping.
import type { MessageFacts } from './render.js';
import { escapeSlack, slackCode } from './text.js';

export interface SlackText {
  readonly type: 'mrkdwn';
  readonly text: string;
}
export type SlackBlock =
  | { readonly type: 'section'; readonly text: SlackText }
  | { readonly type: 'section'; readonly fields: readonly SlackText[] }
  | { readonly type: 'context'; readonly elements: readonly SlackText[] };

export interface RenderedSlack {
  /** The notification text (push notifications, screen readers). */
  readonly text: string;
  readonly blocks: readonly SlackBlock[];
}

const EMOJI: Readonly<Record<MessageFacts['level'], string>> = {
  ERROR: ':rotating_light:',
  WARNING: ':warning:',
  INFO: ':information_source:',
};

/** Escapes, then cuts the raw text (never an entity) until the escaped form fits. */
function fit(raw: string, max: number, escape: (s: string) => string = escapeSlack): string {
  let text = raw;
  let out = escape(text);
  while (out.length > max && text.length > 0) {
    const keep = Math.max(0, Math.floor((text.length * max) / out.length) - 40);
    text = `${text.slice(0, keep)}…[truncated]`;
    if (keep === 0) return escape('…[truncated]');
    out = escape(text);
  }
  return out;
}

const mrkdwn = (text: string): SlackText => ({ type: 'mrkdwn', text });

export function renderSlack(f: MessageFacts): RenderedSlack {
  const blocks: SlackBlock[] = [
    {
      type: 'section',
      text: mrkdwn(`${EMOJI[f.level]} *${f.level}* · ${fit(f.eventKind, 200)}\n*${fit(f.title, 2500)}*`),
    },
  ];
  if (f.digest !== undefined) {
    let text = fit(f.digest.summary, 600);
    let shown = 0;
    for (const e of f.digest.examples) {
      const l = `• ${fit(e, 400)}`;
      if (text.length + l.length + 40 > 3000) break;
      text += `\n${l}`;
      shown++;
    }
    const more = f.digest.more + f.digest.examples.length - shown;
    if (more > 0) text += `\n_… and ${more} more_`;
    blocks.push({ type: 'section', text: mrkdwn(text) });
  }
  if (f.fields.length > 0) {
    blocks.push({
      type: 'section',
      fields: f.fields.slice(0, 10).map((x) => mrkdwn(`*${x.label}*\n${fit(x.value, 1900)}`)),
    });
  }
  const todo: string[] = [];
  if (f.action !== undefined) todo.push(`*What was done*\n${fit(f.action, 1000)}`);
  if (f.advice !== undefined) todo.push(`*What to do*\n${fit(f.advice, 1000)}`);
  if (todo.length > 0) blocks.push({ type: 'section', text: mrkdwn(todo.join('\n')) });
  if (f.body !== '')
    blocks.push({ type: 'section', text: mrkdwn(`\`\`\`${fit(f.body, 2900, slackCode)}\`\`\``) });
  if (f.details.length > 0) {
    const lines = f.details.map((d) => `• ${fit(d.label, 60)}: ${fit(d.value, 300)}`);
    let text = '*Details*';
    for (const l of lines) if (text.length + l.length + 1 <= 3000) text += `\n${l}`;
    blocks.push({ type: 'section', text: mrkdwn(text) });
  }
  blocks.push({ type: 'context', elements: [mrkdwn(`${fit(f.time, 40)} · ${fit(f.reference, 1500)}`)] });
  return { text: fit(`${f.level}: ${f.title}`, 3000), blocks };
}
