import { describe, expect, it } from 'vitest';
import { formatDuration } from '../src/index.js';

describe('formatDuration', () => {
  it('formats durations in at most two adjacent units, truncated', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_300)).toBe('12s');
    expect(formatDuration(185_000)).toBe('3m 5s');
    expect(formatDuration(600_000)).toBe('10m');
    expect(formatDuration(7_500_000)).toBe('2h 5m');
    expect(formatDuration(7_205_000)).toBe('2h');
    expect(formatDuration(273_600_000)).toBe('3d 4h');
    expect(formatDuration(-2_000)).toBe('-2s');
    expect(formatDuration(Number.NaN)).toBe('?');
  });
});
