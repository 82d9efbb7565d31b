// The one duration format of CCAT (CLI tables, alert subjects, digests): pretty-ms's compact units.
import prettyMilliseconds from 'pretty-ms';

/** Above each bound, the precision shown: so 2 h 0 min 5 s is `2h`, never the surprising `2h 5s`. */
const GRAINS = [
  [86_400_000, 3_600_000],
  [3_600_000, 60_000],
  [60_000, 1_000],
] as const;

/**
 * A duration for people in at most two adjacent units: `850ms`, `42s`, `3m 5s`, `2h 7m`, `2h`,
 * `3d 4h` (truncated, not rounded); negative with a `-` prefix; `?` for NaN or ±Infinity. Never throws.
 */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  const grain = GRAINS.find(([above]) => Math.abs(ms) >= above)?.[1] ?? 1;
  return prettyMilliseconds(Math.trunc(ms / grain) * grain, { unitCount: 2, secondsDecimalDigits: 0 });
}
