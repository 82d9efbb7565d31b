// Durations on the command line (`30m`, `24h`, `7d`, `1h30m`) and in output (`3m 05s`).
import { UsageError } from './exit-codes.js';

const UNIT_MS = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
} as const;

/** Ten years: a window longer than the telescope's life is a typo, not a question. */
const MAX_MS = 3650 * UNIT_MS.d;

const WHOLE = /^(?:\d{1,9}(?:ms|s|m|h|d|w))+$/;
const PART = /(\d{1,9})(ms|s|m|h|d|w)/g;

/**
 * Parses `30m`, `24h`, `7d`, `2w`, `1h30m` (units ms, s, m, h, d, w) into milliseconds. Throws a
 * UsageError naming `flag` for anything else, for zero, and for more than ten years.
 */
export function parseDuration(text: string, flag: string): number {
  const shown = JSON.stringify(text.slice(0, 40));
  if (!WHOLE.test(text)) {
    throw new UsageError(
      `invalid duration ${shown} for ${flag}: expected a number and a unit, like 30m, 24h or 7d (units: ms, s, m, h, d, w)`,
    );
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(PART)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms <= 0) throw new UsageError(`invalid duration ${shown} for ${flag}: must be longer than zero`);
  if (ms > MAX_MS) throw new UsageError(`invalid duration ${shown} for ${flag}: at most 3650d`);
  return ms;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** A duration for people: `850ms`, `4.2s`, `42s`, `3m 05s`, `2h 07m`, `3d 04h`. Negative: `-` prefix. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 0) return `-${formatDuration(-ms)}`;
  if (ms < 1_000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(Math.floor(ms / 100) / 10).toFixed(1)}s`;
  const s = Math.floor(ms / 1_000);
  if (s < 60) return `${s}s`;
  if (s < 3_600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3_600)}h ${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d ${pad(Math.floor(s / 3_600) % 24)}h`;
}
