// Plain-text tables for a terminal: a header row, columns padded to their widest cell, numbers
// right-aligned. Cells are cleaned first: error messages come from workers and third-party code and
// may hold newlines or terminal escape sequences that would break the layout or the terminal.
import { redactSecrets } from '@ccat/errors';

export interface Column {
  readonly title: string;
  readonly align?: 'left' | 'right';
  /** Longer cells are cut with `…`. */
  readonly maxWidth?: number;
}

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

/** `text` cut to `max` characters, the last one an ellipsis when anything was cut. */
export function truncateCell(text: string, max: number): string {
  if (text.length <= max) return text;
  return max <= 1 ? '…'.slice(0, max) : `${text.slice(0, max - 1)}…`;
}

/** Renders rows under a header; `indent` goes before every line. No trailing blanks, no final newline. */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
  options: { indent?: string } = {},
): string {
  const indent = options.indent ?? '';
  const cells = rows.map((row) =>
    columns.map((col, i) => {
      const text = cleanCell(row[i] ?? '');
      return col.maxWidth === undefined ? text : truncateCell(text, col.maxWidth);
    }),
  );
  const widths = columns.map((col, i) => Math.max(col.title.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: readonly string[]) =>
    indent +
    values
      .map((v, i) => (columns[i]!.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)].join('\n');
}
