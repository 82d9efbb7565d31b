// Zombie attempts of every operation type (HELD in our runs): attempt k is recovered, k+1 completes,
// the final output is then damaged (so the zombie does not take the "already there" shortcut and
// really works up to its publish/destroy), and attempt k resumes with its signal not yet aborted.
// What must hold: the zombie neither replaces nor removes the final output (its fenced check is
// refused), and the pipeline still finishes.
import { readFile, stat, writeFile } from 'node:fs/promises';
import { claim, dispatchDue, recoverStalled, updateProgress, type OperationRef } from '@ccat/db';
import { LeaseLostError } from '@ccat/errors';
import { resolveOperationOutputs } from '@ccat/recovery-handlers';
import { describe, expect } from 'vitest';
import { OPERATIONS } from '../../src/operations/index.js';
import type { OperationContext } from '../../src/operations/types.js';
import { createLocalCopyTransport } from '../../src/transports.js';
import { workerTest as it, type Harness } from '../harness.js';

function ctxFor(h: Harness, ref: OperationRef): OperationContext {
  const db = h.database.db;
  const controller = new AbortController();
  return {
    ref,
    db,
    signal: controller.signal,
    logger: h.logger,
    transport: createLocalCopyTransport(),
    progress: () => undefined,
    assertLease: async () => {
      const r = await updateProgress(db, ref, {});
      if (!r.applied) {
        const e = new LeaseLostError('fenced check refused');
        controller.abort(e);
        throw e;
      }
    },
    checkpoint: () => Promise.resolve(),
  };
}

describe('adversary: zombies of every type', () => {
  it('a resumed zombie never replaces or removes the final output its successor completed', async ({
    harness,
  }) => {
    const h = await harness('adv_zombies');
    await h.seed(2, 2);
    const db = h.database.db;
    const seen: Record<string, unknown> = {};
    const outcomes = await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.attempt !== 0 || seen[ref.type] !== undefined) return undefined;
        expect((await claim(db, ref, { workerId: 'zombie' })).applied).toBe(true);
        expect((await recoverStalled(db, ref, {}, { event: {} })).applied).toBe(true);
        const [next] = await dispatchDue(db, ref.type, { limit: 1 });
        const outcome = await h.run(next!);
        // A deletion has no output (resolveOperationOutputs answers none): nothing to damage.
        const [out] = await resolveOperationOutputs(db, ref.type, ref.id);
        const isFile =
          out !== undefined &&
          (await stat(out.path).then(
            (s) => s.isFile(),
            () => false,
          ));
        const saved = isFile ? await readFile(out.path) : undefined;
        if (isFile) await writeFile(out.path, 'damaged after completion');
        const err = await OPERATIONS[ref.type].run(ctxFor(h, ref)).then(
          (r) => `returned ${r.bytes}`,
          (e: unknown) => (e instanceof LeaseLostError ? 'LeaseLostError' : String(e)),
        );
        const after = isFile ? (await readFile(out.path)).toString() : undefined;
        if (saved !== undefined) await writeFile(out!.path, saved);
        seen[ref.type] = { outcome, err, finalUntouched: !isFile || after === 'damaged after completion' };
        return outcome;
      },
    });

    expect(outcomes.filter((o) => o.outcome !== 'completed')).toEqual([]);
    for (const [type, v] of Object.entries(seen))
      expect(v, type).toMatchObject({ outcome: 'completed', finalUntouched: true });
    expect(Object.keys(seen).sort()).toEqual([
      'data_transfer',
      'data_transfer_package',
      'deletion',
      'long_term_archive_transfer',
      'raw_data_package',
      'unpack',
    ]);
  });
});
