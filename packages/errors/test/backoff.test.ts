import { describe, expect, it } from 'vitest';
import { fullJitterDelayMs } from '../src/index.js';

describe('fullJitterDelayMs: exponential backoff with full jitter', () => {
  const opts = { baseMs: 1000, maxMs: 60_000 };

  it('draws up to baseMs · 2^(retry−1), capped at maxMs', () => {
    expect([1, 2, 3, 4].map((n) => fullJitterDelayMs(n, opts, () => 1))).toEqual([1000, 2000, 4000, 8000]);
    expect(fullJitterDelayMs(30, opts, () => 1)).toBe(60_000);
    expect(fullJitterDelayMs(10_000, opts, () => 1)).toBe(60_000);
    expect(fullJitterDelayMs(0, opts, () => 1)).toBe(1000);
  });

  it('uses the whole window: a draw of 0 waits 0, and the draw is clamped to [0, 1]', () => {
    expect(fullJitterDelayMs(3, opts, () => 0)).toBe(0);
    expect(fullJitterDelayMs(3, opts, () => 0.5)).toBe(2000);
    expect(fullJitterDelayMs(3, opts, () => -5)).toBe(0);
    expect(fullJitterDelayMs(3, opts, () => 7)).toBe(4000);
    const draws = new Set(Array.from({ length: 50 }, () => fullJitterDelayMs(5, opts)));
    expect(draws.size).toBeGreaterThan(1);
    for (const d of draws) expect(d >= 0 && d <= 16_000).toBe(true);
  });
});
