// Small formatters both renderings share, the CLI's text and the dashboard's pages (durations: formatDuration in @ccat/errors).

/** `2025-03-01 14:05:09Z`: UTC, to the second, sortable. */
export function formatTime(date: Date | null | undefined): string {
  if (date === null || date === undefined || Number.isNaN(date.getTime())) return '-';
  return `${date.toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** `28.6%`, or `n/a` when there was nothing to divide. */
export function formatPercent(ratio: number | null): string {
  return ratio === null ? 'n/a' : `${(ratio * 100).toFixed(1)}%`;
}

/** `0.67`, or `n/a`. */
export function formatRatio(value: number | null): string {
  return value === null ? 'n/a' : value.toFixed(2);
}

/** A JSON value on one line, cut to `max` characters (progress values are arbitrary JSON). */
export function compactJson(value: unknown, max = 40): string {
  if (value === undefined) return '-';
  // JSON.stringify yields undefined only for functions and symbols, which progress values never are.
  const text = JSON.stringify(value) ?? '?';
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `1 operation` / `3 operations`. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
