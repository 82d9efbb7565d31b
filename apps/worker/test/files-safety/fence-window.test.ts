// Adversary finding 4: the window between a fenced check's answer and the rename is safe "either
// way" only for publish, not for destroy: a zombie unpack that passed its check before destroying a
// damaged tree, paused right after the answer (SIGSTOP, GC, a starved event loop), resumed after the
// newer attempt published and completed a good tree, and renamed THAT tree to its tomb and removed
// it. Now a damaged tree is never destroyed: the attempt unpacks and verifies its own copy and
// publishes it over the damaged one (a swap through its tomb, the tomb removed only after a second
// fenced check). Whichever check the zombie is paused after, a verified tree is in place when it
// resumes. The pause is simulated by a gate inside assertLease, after the real statement applied.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  claim,
  dispatchDue,
  readOperation,
  recoverStalled,
  updateProgress,
  type OperationRef,
} from '@ccat/db';
import { LeaseLostError } from '@ccat/errors';
import { describe, expect } from 'vitest';
import { unpack } from '../../src/operations/unpack.js';
import type { OperationContext } from '../../src/operations/types.js';
import { createLocalCopyTransport } from '../../src/transports.js';
import { workerTest as it, type Harness } from '../harness.js';
import { tree, unpackedDir } from './common.js';

function ctxFor(h: Harness, ref: OperationRef, pauseAfterCheck?: () => Promise<void>): OperationContext {
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
      // The check's answer arrived; the process is stopped before its next system call.
      await pauseAfterCheck?.();
      controller.signal.throwIfAborted();
    },
    checkpoint: () => Promise.resolve(),
  };
}

async function recover(h: Harness, ref: OperationRef): Promise<OperationRef> {
  expect((await recoverStalled(h.database.db, ref, {}, { event: {} })).applied).toBe(true);
  const [next] = await dispatchDue(h.database.db, ref.type, { limit: 1 });
  return next!;
}

describe('the window between a fenced check and the rename', () => {
  it.for([
    [0, 'its first check (before renaming its tree into place)'],
    [1, 'its second check (right before swapping the trees through its tomb)'],
  ])(
    'a zombie paused after check %i, %s, leaves a verified tree in place',
    async ([pauseAt], { harness }) => {
      const h = await harness('adv_window');
      await h.seed(2, 2);
      let checked = false;
      let lost: { final: string; good: number; after: number; row: unknown } | undefined;
      await h
        .runUntilQuiet({
          before: async (ref) => {
            if (ref.type !== 'unpack' || ref.attempt !== 0) return undefined;
            const db = h.database.db;
            // Attempt 0 unpacked and published, then died before recording it; a file then goes bad.
            expect((await claim(db, ref, { workerId: 'crashed' })).applied).toBe(true);
            await unpack.run(ctxFor(h, ref));
            const final = await unpackedDir(h, ref.id);
            const [first] = [...(await tree(final)).keys()].filter((k) => k.startsWith('files/'));
            await writeFile(join(final, first!), 'bit rot');
            // Attempt 1 sees the damage and destroys the tree: its check passes, then it is stopped.
            const one = await recover(h, ref);
            expect((await claim(db, one, { workerId: 'zombie' })).applied).toBe(true);
            let paused!: () => void;
            const isPaused = new Promise<void>((res) => (paused = res));
            let resume!: () => void;
            const gate = new Promise<void>((res) => (resume = res));
            let pauses = 0;
            const zombie = unpack
              .run(
                ctxFor(h, one, async () => {
                  if (pauses++ !== pauseAt) return;
                  paused();
                  await gate;
                }),
              )
              .then(
                () => 'returned',
                (e: unknown) => e,
              );
            await isPaused;
            // The monitor recovers attempt 1; attempt 2 destroys the damaged tree, unpacks and completes.
            const two = await recover(h, one);
            expect(await h.run(two)).toBe('completed');
            const good = (await tree(final)).size;
            expect(good).toBeGreaterThan(0);
            // Attempt 1 resumes.
            resume();
            await zombie;
            lost = {
              final,
              good,
              after: (await tree(final)).size,
              row: (await readOperation(db, 'unpack', ref.id))?.status,
            };
            checked = true;
            return 'completed';
          },
        })
        .catch(() => undefined);
      expect(checked).toBe(true);
      // What should hold: the completed unpack's directory is still there.
      expect({ row: lost!.row, files: lost!.after }).toEqual({ row: 'completed', files: lost!.good });
    },
  );
});
