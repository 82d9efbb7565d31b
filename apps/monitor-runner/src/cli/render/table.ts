// Plain-text tables for a terminal, on cli-table3 (which measures cells with string-width, so CJK
// and emoji keep columns aligned): no borders, two blanks between columns, numbers right-aligned.
// Cells are cleaned first: error messages come from workers and third-party code and may hold
// newlines or terminal escape sequences that would break the layout or the terminal.
import { redactSecrets } from '@ccat/errors';
import Table from 'cli-table3';
import stringWidth from 'string-width';

export interface Column {
  readonly title: string;
  readonly align?: 'left' | 'right';
  /** Longer cells (in terminal columns) are cut with `…`. */
  readonly maxWidth?: number;
}

/** A right-aligned column (numbers, durations). */
export const right = (title: string): Column => ({ title, align: 'right' });

// Matching control characters is the point of these two.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]+/g;
// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]/g;

/**
 * One line of printable text: secrets redacted (before any cut, so a cut cell never shows half of
 * one), escape sequences removed, control characters and runs of blanks as one space. Cells
 * longer than 10 000 characters are cut (after redaction) to keep the cost bounded.
 */
export function cleanCell(text: string): string {
  return redactSecrets(text, 10_000).replace(ANSI, '').replace(CONTROL, ' ').replace(/ {2,}/g, ' ').trim();
}

const segmenter = new Intl.Segmenter();

/** `text` cut to `max` terminal columns (whole graphemes), the last one an ellipsis when cut. */
function truncateCell(text: string, max: number): string {
  if (stringWidth(text) <= max) return text;
  let out = '';
  for (const { segment } of segmenter.segment(text)) {
    if (stringWidth(out + segment) > max - 1) break;
    out += segment;
  }
  return `${out}…`;
}

const NO_BORDERS = Object.fromEntries(
  ['', '-mid', '-left', '-right'].flatMap((side) =>
    ['top', 'bottom', 'left', 'mid', 'right'].map((edge) => [`${edge}${side}`, '']),
  ),
);

/**
 * Renders rows under a header (a column given as a string is its left-aligned title); `indent` goes
 * before every line. No trailing blanks, no final newline.
 */
export function formatTable(
  specs: readonly (Column | string)[],
  rows: readonly (readonly string[])[],
  options: { indent?: string } = {},
): string {
  const columns = specs.map((c): Column => (typeof c === 'string' ? { title: c } : c));
  const table = new Table({
    head: columns.map((c) => c.title),
    colAligns: columns.map((c) => c.align ?? 'left'),
    chars: { ...NO_BORDERS, middle: '  ' },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const row of rows) {
    table.push(
      columns.map((col, i) => {
        const text = cleanCell(row[i] ?? '');
        return col.maxWidth === undefined ? text : truncateCell(text, col.maxWidth);
      }),
    );
  }
  return table
    .toString()
    .split('\n')
    .map((line) => `${options.indent ?? ''}${line}`.trimEnd())
    .join('\n');
}
