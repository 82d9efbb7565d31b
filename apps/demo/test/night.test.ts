// `ccat-demo --night`, small (issue 13.4): the same night without and with faults, through real
// worker and monitor processes. Asserts the counts, not the timing: no operation that no fault
// targeted ends FAILED; every poison operation (a crash on every attempt) fails POISON_OPERATION
// with exactly one ERROR notification.
import { Writable } from 'node:stream';
import { testDatabaseUrl } from '@ccat/db/testing';
import { testRedisUrl } from '@ccat/test-support';
import { describe, expect, it } from 'vitest';
import { planNight, runNight } from '../src/night.js';
import { runDemo } from '../src/run.js';

const PACKAGES = 30;
const SHARE = 0.15;

/** The first seed whose plan has exactly one poison operation, a raw data package (ids 1..PACKAGES all exist). */
function seedWithPoison(): string {
  for (let i = 0; ; i++) {
    const seed = `night-${i}`;
    const plan = planNight(seed, PACKAGES, 5, SHARE);
    const poison = [...plan.targeted].filter(([, v]) => v === 'poison').map(([k]) => k);
    if (poison.length === 1 && poison[0]!.startsWith('raw_data_package:')) return seed;
  }
}

describe('planNight', () => {
  it('is the same for the same seed, targets about the share, and a poison crashes every attempt at its start', () => {
    const a = planNight('s', 1000, 5, 0.05);
    expect(planNight('s', 1000, 5, 0.05)).toEqual(a);
    expect(planNight('t', 1000, 5, 0.05)).not.toEqual(a);
    // 1000 + 200 + 200 + 200 + 1000 + 2200 ids at 5 %.
    expect(a.targeted.size).toBeGreaterThan(180);
    expect(a.targeted.size).toBeLessThan(300);
    const rules = (a.faults['rules'] as { kind: string; attempts?: unknown; stage: string }[]) ?? [];
    const poison = rules.filter((r) => r.attempts === 'all');
    expect(poison.length).toBeGreaterThan(0);
    for (const r of poison) expect(r).toMatchObject({ kind: 'crash', stage: 'start' });
    expect(rules.filter((r) => r.kind === 'crash' && r.attempts !== 'all').length).toBeGreaterThan(0);
  });
});

describe('a small night', () => {
  it('spares the operations no fault targeted and fails each poison operation with one alert', async () => {
    let text = '';
    const out = new Writable({
      write: (c: Buffer, _e, cb) => ((text += c.toString()), cb()),
    }) as unknown as NodeJS.WriteStream;
    const result = await runNight(
      {
        packages: PACKAGES,
        filesPerPackage: 1,
        workers: 2,
        chaos: false,
        timeoutMs: 240_000,
        databaseUrl: testDatabaseUrl(),
        redisUrl: testRedisUrl(),
        keep: false,
        seed: seedWithPoison(),
        env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
        out,
        signal: new AbortController().signal,
      },
      SHARE,
      runDemo,
    );
    const c = result.faulty.check!;
    expect(c.innocentFailed, text.slice(-4000)).toEqual([]);
    expect(c.poison, text.slice(-4000)).toBe(1);
    expect(c.poisonFailed, text.slice(-4000)).toBe(c.poison);
    expect(c.problems, text.slice(-4000)).toEqual([]);
    // Crashes happened and were counted apart: shared stalls, and operations that then ran alone.
    expect(c.sharedStalls).toBeGreaterThan(0);
    expect(c.ranAlone).toBeGreaterThanOrEqual(c.poison);
    expect(result.clean.check!.failed).toBe(0);
    expect(result.ok, text.slice(-4000)).toBe(true);
    expect(text).toMatch(/throughput without faults: [\d.]+ operations\/s/);
    expect(text).toMatch(/ratio with \/ without: [\d.]+/);
  }, 600_000);
});
