// The one duration format of CCAT (CLI tables, alert subjects, digests): pretty-ms's compact units.
import prettyMilliseconds from 'pretty-ms';

/**
 * A duration for people, at most two units, whole seconds: `850ms`, `42s`, `3m 5s`, `2h 7m`,
 * `3d 4h`; negative with a `-` prefix; `?` for NaN or ±Infinity. Never throws.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  return prettyMilliseconds(Math.round(ms), { unitCount: 2, secondsDecimalDigits: 0 });
}
