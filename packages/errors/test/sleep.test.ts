import { describe, expect, it } from 'vitest';
import { sleep } from '../src/index.js';

describe('sleep', () => {
  it('resolves false after the delay', async () => {
    const t0 = performance.now();
    await expect(sleep(20)).resolves.toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(15);
  });

  it('resolves true early when the signal aborts, and at once when it already has', async () => {
    const c = new AbortController();
    const t0 = performance.now();
    const slept = sleep(60_000, c.signal);
    c.abort();
    await expect(slept).resolves.toBe(true);
    expect(performance.now() - t0).toBeLessThan(1000);
    await expect(sleep(60_000, c.signal)).resolves.toBe(true);
  });

  it('treats a negative delay as 0', async () => {
    await expect(sleep(-5)).resolves.toBe(false);
  });
});
