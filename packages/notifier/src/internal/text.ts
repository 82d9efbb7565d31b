// Making untrusted text inert for each medium. Order matters: redact, then normalise, then cut,
// then escape for the medium (escaping last, so a cut never splits an entity).
import { truncate } from '@ccat/errors';

// Control characters except TAB and LF; CR, NEL and the Unicode line/paragraph separators.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;
const LINE_BREAKS = /[\r\n\u0085\u2028\u2029]+/g;
// Zero-width and bidi controls that can disguise text ("Trojan Source").
const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/** One line: every line break becomes a space, control and invisible characters go. For headers and titles. */
export function singleLine(text: string): string {
  return text
    .replace(LINE_BREAKS, ' ')
    .replace(CONTROL, '')
    .replace(INVISIBLE, '')
    .replace(/\s{2,}/g, ' ')
    .trim();
}

/** Multi-line text with CRLF normalised to LF and control characters removed (TAB and LF kept). */
export function plainText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u0085\u2028\u2029]/g, '\n')
    .replace(CONTROL, '')
    .replace(INVISIBLE, '');
}

/**
 * Cuts to at most `max` characters including the marker that says how much was cut (the marker is
 * at most 32 characters). The cut itself is @ccat/errors' `truncate`: it never splits a surrogate pair.
 */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  return truncate(text, Math.max(0, max - 32));
}

/**
 * Slack mrkdwn: `&`, `<`, `>` become entities, so no `<!channel>`, `<!here>`, `<@U…>`, `<#C…>` or
 * `<url|label>` can be formed, and bare `@channel`/`@here`/`@everyone` get a zero-width joiner so
 * they stay words.
 */
export function escapeSlack(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(channel|here|everyone)\b/gi, '@\u2060$1');
}

/** Text inside a Slack code block: escaped, and its own fences broken so it cannot close the block. */
export function slackCode(text: string): string {
  return escapeSlack(text).replace(/```/g, '`\u2060`\u2060`');
}
