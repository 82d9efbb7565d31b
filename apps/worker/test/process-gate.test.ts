import { OperationAbortedError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { ProcessGate } from '../src/process-gate.js';

const tick = () => new Promise((r) => setImmediate(r));

describe('ProcessGate', () => {
  it('shared tasks run together; one to run alone waits for them, and holds new ones off', async () => {
    const gate = new ProcessGate();
    const a = await gate.shared();
    const b = await gate.shared();
    expect(gate.sharing).toBe(2);
    let aloneIn = false;
    const alone = gate.alone().then((r) => ((aloneIn = true), r));
    let lateIn = false;
    const late = gate.shared().then((r) => ((lateIn = true), r));
    await tick();
    expect([aloneIn, lateIn]).toEqual([false, false]);
    a();
    a(); // twice is harmless
    await tick();
    expect(aloneIn).toBe(false);
    b();
    const release = await alone;
    expect(gate.aloneNow).toBe(true);
    await tick();
    expect(lateIn).toBe(false);
    release();
    (await late)();
    expect(gate.sharing).toBe(0);
    expect(gate.aloneNow).toBe(false);
  });

  it('two waiting to run alone, woken by the same release, never run together (the night found this)', async () => {
    const gate = new ProcessGate();
    const s = await gate.shared();
    let inside = 0;
    let most = 0;
    const run = async () => {
      const release = await gate.alone();
      most = Math.max(most, ++inside);
      await tick();
      inside--;
      release();
    };
    const both = Promise.all([run(), run(), run()]);
    await tick();
    s();
    await both;
    expect(most).toBe(1);
  });

  it('two that run alone run one after the other', async () => {
    const gate = new ProcessGate();
    const first = await gate.alone();
    let second = false;
    const next = gate.alone().then((r) => ((second = true), r));
    await tick();
    expect(second).toBe(false);
    first();
    (await next)();
  });

  it('an abort while waiting takes nothing and lets the others go', async () => {
    const gate = new ProcessGate();
    const s = await gate.shared();
    const stop = new AbortController();
    const alone = gate.alone(stop.signal);
    let lateIn = false;
    const late = gate.shared().then((r) => ((lateIn = true), r));
    await tick();
    expect(lateIn).toBe(false);
    stop.abort();
    await expect(alone).rejects.toBeInstanceOf(OperationAbortedError);
    (await late)();
    expect(lateIn).toBe(true);
    s();
    expect(gate.sharing).toBe(0);
    await expect(gate.shared(stop.signal)).resolves.toBeTypeOf('function');
  });
});
