// HTML building for the dashboard: every dynamic text goes through `esc` (or `text`), so hostile
// operation names and error messages stay inert; the page layout; and a generic rendering of plain
// data (arrays of records as tables) for the fields the admin queries add over time.
import { redactSecrets } from '@ccat/errors';

/** HTML that is already safe to insert (built by these helpers only). */
export interface Html {
  readonly html: string;
}

const ENTITIES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

// Control characters (but TAB, LF, CR), zero-width and bidi controls: a hostile name or message
// could reorder or hide what the operator reads ("Trojan Source"); they are shown as `<U+202E>`.
const HIDDEN =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;
const visible = (c: string) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}>`;

/**
 * Text as HTML: secrets of a known form redacted, control and bidi characters made visible as
 * `<U+XXXX>`, then the five significant characters escaped.
 */
function esc(value: unknown): string {
  return redactSecrets(cell(value, 20_000), 20_000)
    .replace(HIDDEN, visible)
    .replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** A Date as `2025-03-01 14:05:09Z` (UTC, as the CLI prints it). */
export function isoTime(d: Date): string {
  return Number.isNaN(d.getTime()) ? '-' : `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** Tagged template: interpolated values are escaped unless they are Html (or arrays of Html). */
export function h(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += piece(v) + strings[i + 1]!;
  });
  return { html: out };
}

function piece(v: unknown): string {
  if (Array.isArray(v)) return v.map(piece).join('');
  if (typeof v === 'object' && v !== null && 'html' in v && typeof (v as Html).html === 'string')
    return (v as Html).html;
  return esc(v);
}

/** A table; cells are escaped unless Html. */
export function table(
  columns: readonly string[],
  rows: readonly (readonly unknown[])[],
  empty = 'none',
): Html {
  if (rows.length === 0) return h`<p class="empty">${empty}</p>`;
  return h`<table><thead><tr>${columns.map((c) => h`<th>${c}</th>`)}</tr></thead><tbody>${rows.map(
    (r) => h`<tr>${r.map((c) => h`<td>${c}</td>`)}</tr>`,
  )}</tbody></table>`;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

/** A value as one line of text: `-` for none, JSON for nested values, cut to `max` characters. */
function cell(v: unknown, max = 300): string {
  if (v === null || v === undefined) return '-';
  if (v instanceof Date) return isoTime(v);
  const text = typeof v === 'object' ? JSON.stringify(v) : `${v as string | number | boolean | bigint}`;
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * Any plain value as HTML: an array of records as a table (columns: the union of their keys), a
 * record as a definition list, anything else as text. Used for fields the page does not know by name.
 */
export function generic(value: unknown): Html {
  if (Array.isArray(value)) {
    if (value.length === 0) return h`<p class="empty">none</p>`;
    if (value.every(isRecord)) {
      const columns = [...new Set(value.flatMap((r) => Object.keys(r)))];
      return table(
        columns,
        value.map((r) => columns.map((c) => cell(r[c]))),
      );
    }
    return h`<ul>${value.map((v) => h`<li>${cell(v)}</li>`)}</ul>`;
  }
  if (isRecord(value))
    return h`<dl>${Object.entries(value).map(([k, v]) => h`<dt>${k}</dt><dd>${generic(v)}</dd>`)}</dl>`;
  return h`<span>${cell(value)}</span>`;
}

/** Human words for a camelCase key: `unservedQueues` → `unserved queues`. */
export const words = (key: string) => key.replace(/([a-z])([A-Z])/g, '$1 $2').toLowerCase();

const NAV = [
  ['/', 'Now'],
  ['/failures', 'Failures'],
  ['/trends', 'Trends'],
] as const;

/** The whole page: the same main content the live refresh fetches (`?partial=1`) replaces. */
export function layout(title: string, path: string, main: Html, live: boolean, refreshMs: number): string {
  return `<!doctype html>${
    h`<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · CCAT recovery</title><link rel="stylesheet" href="/assets/dashboard.css">
<script src="/assets/dashboard.js" defer></script></head>
<body><header><strong>CCAT recovery</strong><nav>${NAV.map(
      ([href, name]) => h`<a href="${href}"${path === href ? h` aria-current="page"` : h``}>${name}</a>`,
    )}</nav><span id="updated"></span></header>
<main id="main"${live ? h` data-live="${refreshMs}"` : h``}>${main}</main></body></html>`.html
  }`;
}
