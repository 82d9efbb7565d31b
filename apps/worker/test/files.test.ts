// Files are fenced like rows, paths stay in their roots, deletion checks what it deletes (issue 12,
// items 1-3). Driven in-process: a zombie attempt is an operation run with a context like the task
// runner's, started after the monitor recovered its attempt and a newer attempt completed.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import {
  claim,
  countsByTypeAndStatus,
  dispatchDue,
  readOperation,
  recoverStalled,
  updateProgress,
  type OperationRef,
} from '@ccat/db';
import { LeaseLostError, OperationAbortedError } from '@ccat/errors';
import { describe, expect } from 'vitest';
import { unpack } from '../src/operations/unpack.js';
import type { OperationContext } from '../src/operations/types.js';
import { createLocalCopyTransport } from '../src/transports.js';
import { runCopy, tree, unpackedDir } from './files-safety/common.js';
import { workerTest as it, type Harness } from './harness.js';

/** A context like the task runner's for attempt `ref`: fenced progress writes that abort on refusal. */
/**
 * Whether an attempt stopped because it lost its lease: the LeaseLostError itself, or the AbortError a
 * stream throws when the signal fires mid-read (its cause is the LeaseLostError). Which one surfaces
 * depends on whether the periodic progress write or the fenced check notices first.
 */
function leaseLost(err: unknown): boolean {
  return err instanceof LeaseLostError || (err instanceof Error && err.cause instanceof LeaseLostError);
}

function attemptContext(h: Harness, ref: OperationRef, controller = new AbortController()): OperationContext {
  const db = h.database.db;
  return {
    ref,
    db,
    signal: controller.signal,
    logger: h.logger,
    transport: createLocalCopyTransport(),
    progress: (n) => {
      updateProgress(db, ref, { bytesDone: n }).then(
        (r) => {
          if (!r.applied)
            controller.abort(new LeaseLostError('progress write refused: the attempt moved on'));
        },
        () => undefined,
      );
    },
    assertLease: async () => {
      const r = await updateProgress(db, ref, {});
      if (!r.applied) {
        const e = new LeaseLostError('fenced check refused: the attempt moved on');
        controller.abort(e);
        throw e;
      }
      controller.signal.throwIfAborted();
    },
    checkpoint: () => Promise.resolve(),
  };
}

/** The attempt after `ref`, recovered by the monitor and scheduled by the dispatcher. */
async function recover(h: Harness, ref: OperationRef): Promise<OperationRef> {
  expect((await recoverStalled(h.database.db, ref, {}, { event: {} })).applied).toBe(true);
  const [next] = await dispatchDue(h.database.db, ref.type, { limit: 1 });
  expect(next).toEqual({ ...ref, attempt: ref.attempt + 1 });
  return next!;
}

const allCompleted = async (h: Harness) =>
  new Set((await countsByTypeAndStatus(h.database.db)).map((c) => c.status));

describe('files are fenced like rows (issue 12 item 1)', () => {
  it('a recovered zombie unpack never deletes the directory the newer attempt completed', async ({
    harness,
  }) => {
    const h = await harness('zombie_unpack');
    await h.seed(2, 2);
    let checked = 0;
    const outcomes = await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type !== 'unpack' || ref.attempt !== 0) return undefined;
        const db = h.database.db;
        // Attempt k claims the unpack, then pauses (SIGSTOP, a slow disk) before it looks.
        expect((await claim(db, ref, { workerId: 'zombie' })).applied).toBe(true);
        // The monitor recovers it; attempt k+1 unpacks, verifies and completes.
        const next = await recover(h, ref);
        expect(await h.run(next)).toBe('completed');
        const final = await unpackedDir(h, ref.id);
        const good = await tree(final);
        expect(good.size).toBeGreaterThan(0);
        // Attempt k resumes: its progress write is refused and it aborts while verifying the
        // directory it finds in place.
        const controller = new AbortController();
        const ctx = attemptContext(h, ref, controller);
        expect((await updateProgress(db, ref, { bytesDone: 1 })).applied).toBe(false);
        controller.abort(new LeaseLostError('progress write refused: the attempt moved on'));
        const err = await unpack.run(ctx).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(await tree(final)).toEqual(good);
        expect(leaseLost(err)).toBe(true);
        checked++;
        return 'completed';
      },
    });
    expect(checked).toBe(1);
    // The long-term-archive transfers read the unpacked directory: all of them completed.
    expect(outcomes.filter((o) => o.outcome !== 'completed')).toEqual([]);
    expect(await allCompleted(h)).toEqual(new Set(['completed']));
  });

  it('a zombie that finds the directory damaged does not remove it: the fenced check refuses', async ({
    harness,
  }) => {
    const h = await harness('zombie_damaged');
    await h.seed(2, 2);
    let checked = 0;
    await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type !== 'unpack' || ref.attempt !== 0) return undefined;
        const db = h.database.db;
        expect((await claim(db, ref, { workerId: 'zombie' })).applied).toBe(true);
        const next = await recover(h, ref);
        expect(await h.run(next)).toBe('completed');
        const final = await unpackedDir(h, ref.id);
        // A file goes bad after the completion; the zombie's signal is not aborted yet (its next
        // progress write has not happened): it sees a checksum mismatch and wants to start over.
        const [first] = [...(await tree(final)).keys()].filter((k) => k.startsWith('files/'));
        await writeFile(join(final, first!), 'bit rot');
        const before = await tree(final);
        const err = await unpack.run(attemptContext(h, ref)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(await tree(final)).toEqual(before);
        expect(leaseLost(err)).toBe(true);
        checked++;
        return 'completed';
      },
    });
    expect(checked).toBe(1);
  });

  it('a graceful shutdown while verifying an existing directory leaves it in place', async ({ harness }) => {
    const h = await harness('shutdown_verify');
    await h.seed(2, 2);
    let checked = 0;
    const outcomes = await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type !== 'unpack' || ref.attempt !== 0) return undefined;
        const db = h.database.db;
        // Attempt 0 unpacked and published, then died before recording it.
        expect((await claim(db, ref, { workerId: 'crashed' })).applied).toBe(true);
        await unpack.run(attemptContext(h, ref));
        const final = await unpackedDir(h, ref.id);
        const good = await tree(final);
        // Attempt 1 still holds its row when the shutdown aborts it mid-verification.
        const next = await recover(h, ref);
        expect((await claim(db, next, { workerId: 'stopping' })).applied).toBe(true);
        const controller = new AbortController();
        controller.abort(new OperationAbortedError('shutting down'));
        const err = await unpack.run(attemptContext(h, next, controller)).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(await tree(final)).toEqual(good);
        expect(err).toBeInstanceOf(OperationAbortedError);
        // The monitor recovers attempt 1; attempt 2 verifies what is there and completes.
        checked++;
        return h.run(await recover(h, next));
      },
    });
    expect(checked).toBe(1);
    expect(outcomes.filter((o) => o.outcome !== 'completed')).toEqual([]);
    expect(await allCompleted(h)).toEqual(new Set(['completed']));
  });
});

describe('paths stay inside their roots (issue 12 item 3)', () => {
  it("a transfer package named '../../victim' fails validation and touches nothing outside the root", async ({
    harness,
  }) => {
    const h = await harness('unpack_name');
    await h.seed(2, 2);
    let victim: string | undefined;
    const outcomes = await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type !== 'unpack' || victim !== undefined) return undefined;
        const db = h.database.db;
        const t = await db
          .selectFrom('data_transfers as t')
          .innerJoin('data_locations as l', 'l.id', 't.destination_location_id')
          .select(['t.data_transfer_package_id', 'l.root_path'])
          .where('t.id', '=', ref.id)
          .executeTakeFirstOrThrow();
        await db
          .updateTable('data_transfer_packages')
          .set({ name: '../../victim' })
          .where('id', '=', t.data_transfer_package_id)
          .execute();
        // Where a plain join would unpack it: outside the location root.
        victim = join(t.root_path, 'unpacked', '../../victim');
        await mkdir(join(victim, 'keep'), { recursive: true });
        await writeFile(join(victim, 'keep', 'precious.txt'), 'do not touch');
        return h.run(ref);
      },
    });
    expect(victim).toBeDefined();
    expect(dirname(victim!)).not.toContain('unpacked');
    expect(await tree(victim!)).toEqual(new Map([['keep/precious.txt', 'ZG8gbm90IHRvdWNo']]));
    const unpackOutcome = outcomes.find((o) => o.ref.type === 'unpack' && o.outcome !== 'completed');
    expect(unpackOutcome?.outcome).toBe('permanent_failure');
    const row = await readOperation(h.database.db, 'unpack', unpackOutcome!.ref.id);
    expect(row).toMatchObject({ status: 'failed', lastErrorCode: 'VALIDATION_FAILED' });
    expect(row!.lastErrorMessage).toMatch(/\.\.\/\.\.\/victim/);
  });
});

describe('deletion checks what it deletes (issue 12 item 2)', () => {
  /** Runs one archived package through, then seeds another that is never archived. */
  async function archivedAndNot(h: Harness) {
    await h.seed(2, 2);
    expect(
      (await h.runUntilQuiet()).filter((o) => o.outcome !== 'completed'),
      'the pipeline runs clean',
    ).toEqual([]);
    const [archived] = await h.database.db
      .selectFrom('raw_data_packages')
      .select(['id', 'name', 'source_location_id'])
      .orderBy('id')
      .execute();
    await h.seed(1, 2);
    const source = h.locations.byName.get('cha/primecam-raw')!.root;
    const archive = h.locations.byName.get('col/col-lta')!;
    return { archived: archived!, source, archive };
  }

  it("a copy at relative path '.' (the source root) is refused; nothing is deleted", async ({ harness }) => {
    const h = await harness('delete_root');
    const { archived, source } = await archivedAndNot(h);
    const before = await tree(source);
    expect(before.size).toBeGreaterThan(0);
    const { outcome, row } = await runCopy(h, {
      raw_data_package_id: archived.id,
      location_id: archived.source_location_id,
      relative_path: '.',
      copy_kind: 'raw_files',
    });
    expect(outcome).toBe('permanent_failure');
    expect(row).toMatchObject({ status: 'failed', lastErrorCode: 'VALIDATION_FAILED' });
    expect(await tree(source)).toEqual(before);
  });

  it('a copy at the long-term archive (the verified archive itself) is refused; the archive stays', async ({
    harness,
  }) => {
    const h = await harness('delete_archive');
    const { archived, archive } = await archivedAndNot(h);
    const a = await h.database.db
      .selectFrom('long_term_archive_transfers')
      .select('relative_path')
      .where('raw_data_package_id', '=', archived.id)
      .executeTakeFirstOrThrow();
    const before = await tree(archive.root);
    expect([...before.keys()]).toContain(a.relative_path);
    const { outcome, row } = await runCopy(h, {
      raw_data_package_id: archived.id,
      location_id: archive.id,
      relative_path: a.relative_path,
      copy_kind: 'raw_data_package',
    });
    expect(outcome).toBe('permanent_failure');
    expect(row).toMatchObject({ status: 'failed', lastErrorCode: 'DELETION_NOT_SAFE' });
    expect(row!.lastErrorMessage).toMatch(/long_term_archive/);
    expect(await tree(archive.root)).toEqual(before);
  });

  it("a copy that names another package's files, or a place its package does not put it, is refused", async ({
    harness,
  }) => {
    const h = await harness('delete_other');
    const { archived, source } = await archivedAndNot(h);
    const db = h.database.db;
    const [other] = await db
      .selectFrom('raw_data_packages')
      .select(['id', 'name', 'relative_path', 'buffer_location_id'])
      .where('id', '!=', archived.id)
      .where('status', '=', 'pending')
      .execute();
    const before = await tree(source);
    // The archived package's id, the never-archived package's directory.
    const a = await runCopy(h, {
      raw_data_package_id: archived.id,
      location_id: archived.source_location_id,
      relative_path: other!.name,
      copy_kind: 'raw_files',
    });
    expect(a.row).toMatchObject({ status: 'failed', lastErrorCode: 'DELETION_NOT_SAFE' });
    // A raw data package copy at a path that is not where its package is packaged.
    const b = await runCopy(h, {
      raw_data_package_id: archived.id,
      location_id: other!.buffer_location_id,
      relative_path: other!.relative_path,
      copy_kind: 'raw_data_package',
    });
    expect(b.row).toMatchObject({ status: 'failed', lastErrorCode: 'DELETION_NOT_SAFE' });
    expect(await tree(source)).toEqual(before);
  });
});
