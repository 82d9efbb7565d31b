// Plain-text mail only: no HTML, so nothing in a message can become markup. Header values are one
// line (CR/LF gone) before nodemailer ever sees them.
import type { MessageFacts } from './render.js';
import { cut, singleLine } from './text.js';

export interface RenderedEmail {
  readonly subject: string;
  readonly text: string;
}

const pad = (label: string): string => `${label}:`.padEnd(15);

export function renderEmail(
  f: MessageFacts,
  options: { subjectPrefix: string; maxSubjectLength: number },
): RenderedEmail {
  const prefix = singleLine(options.subjectPrefix);
  const subject = cut(
    singleLine(`${prefix ? `${prefix} ` : ''}${f.level}: ${f.title}`),
    options.maxSubjectLength + prefix.length + 10,
  );
  const lines: string[] = [`${f.level} · ${f.eventKind}`, f.title, ''];
  if (f.digest !== undefined) {
    lines.push(f.digest.summary, '', 'Examples:');
    for (const e of f.digest.examples) lines.push(`  - ${e}`);
    if (f.digest.more > 0) lines.push(`  … and ${f.digest.more} more.`);
    lines.push('', 'The first of them:');
  }
  for (const field of f.fields) lines.push(`${pad(field.label)}${field.value}`);
  if (f.action !== undefined) lines.push(`${pad('What was done')}${f.action}`);
  if (f.advice !== undefined) lines.push(`${pad('What to do')}${f.advice}`);
  if (f.body !== '') lines.push('', f.body);
  if (f.details.length > 0) {
    lines.push('', 'Details:');
    for (const d of f.details) lines.push(`  ${d.label}: ${d.value}`);
  }
  lines.push('', `${f.time} · ${f.reference}`, '');
  return { subject, text: lines.join('\n') };
}
