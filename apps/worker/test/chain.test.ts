import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  claim,
  countsByTypeAndStatus,
  dispatchDue,
  recoverStalled,
  registerRawFiles,
  type OperationRef,
} from '@ccat/db';
import { partialPath, resolveOperationOutputs, type ContainedPath } from '@ccat/recovery-handlers';
import { describe, expect } from 'vitest';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { listTar } from '../src/operations/files.js';
import * as tar from 'tar';
import { workerTest as it, type Harness } from './harness.js';

/** Every raw file's bytes, read at the source before the pipeline deletes it. */
async function snapshotSources(h: Harness): Promise<Map<string, Buffer>> {
  const files = await h.database.db.selectFrom('raw_data_files').select(['relative_path']).execute();
  const root = h.locations.byName.get('cha/primecam-raw')!.root;
  const out = new Map<string, Buffer>();
  for (const f of files) out.set(f.relative_path, await readFile(join(root, f.relative_path)));
  return out;
}

/** Extracts every archived package from the long-term archive and compares it with the sources, byte for byte. */
async function expectArchivesIdentical(h: Harness, sources: Map<string, Buffer>): Promise<void> {
  const archives = await h.database.db
    .selectFrom('long_term_archive_transfers')
    .select(['relative_path', 'verified_at', 'status'])
    .execute();
  const lta = h.locations.byName.get('col/col-lta')!.root;
  let compared = 0;
  for (const a of archives) {
    expect(a.status).toBe('completed');
    expect(a.verified_at).toBeInstanceOf(Date);
    const file = join(lta, a.relative_path);
    const out = join(h.root, 'check', a.relative_path);
    await mkdir(out, { recursive: true });
    await tar.extract({ file, cwd: out, strict: true });
    for (const name of await listTar(file as ContainedPath)) {
      expect(await readFile(join(out, name))).toEqual(sources.get(name));
      compared++;
    }
  }
  expect(compared).toBe(sources.size);
}

describe('the whole chain, raw files to deletion', () => {
  it('ends with every operation completed, the archives byte-identical, the source copies deleted', async ({
    harness,
  }) => {
    const h = await harness('chain');
    await h.seed(5, 3);
    const sources = await snapshotSources(h);
    const outcomes = await h.runUntilQuiet();
    expect(outcomes.every((o) => o.outcome === 'completed')).toBe(true);
    const counts = await countsByTypeAndStatus(h.database.db);
    const statuses = new Set(counts.map((c) => c.status));
    expect([...statuses]).toEqual(['completed']);
    const byType = Object.fromEntries(counts.map((c) => [c.type, c.count]));
    // 5 packages, bundles of 2 → 3 transfer packages → 3 transfers, 3 unpacks, 5 archives,
    // deletions: 5 raw-file dirs + 5 package tars + 3 transfer tars.
    expect(byType).toEqual({
      raw_data_package: 5,
      data_transfer_package: 3,
      data_transfer: 3,
      unpack: 3,
      long_term_archive_transfer: 5,
      deletion: 13,
    });
    await expectArchivesIdentical(h, sources);
    // The source copies are gone, and no partial output is left anywhere.
    const src = h.locations.byName.get('cha/primecam-raw')!.root;
    for (const name of sources.keys())
      await expect(readFile(join(src, name))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await h.partials()).toEqual([]);
    // Exactly one completion per operation.
    const completions = await h.database.db
      .selectFrom('operation_events')
      .select(['operation_type', 'operation_id'])
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('event', '=', 'completed')
      .groupBy(['operation_type', 'operation_id'])
      .execute();
    expect(completions.every((c) => c.n === '1')).toBe(true);
    expect(completions.length).toBe(32);
  });
});

describe('every operation is idempotent over what an interrupted run left', () => {
  it('attempt 0 of every operation "crashes" after writing junk partial output and a wrong final file; attempt 1 finishes cleanly', async ({
    harness,
  }) => {
    const h = await harness('idem');
    await h.seed(3, 2);
    const sources = await snapshotSources(h);
    const interrupted: string[] = [];
    const crashFirstAttempt = async (ref: OperationRef) => {
      if (ref.attempt !== 0) return undefined;
      const db = h.database.db;
      // The interrupted run: claimed, wrote junk where it writes, then died; the monitor reset it.
      expect((await claim(db, ref, { workerId: 'crashed' })).applied).toBe(true);
      for (const out of await resolveOperationOutputs(db, ref.type, ref.id)) {
        const junk = partialPath(out.path, 0);
        await mkdir(dirname(junk), { recursive: true });
        if (out.kind === 'directory') {
          await mkdir(join(junk, 'half'), { recursive: true });
          await writeFile(join(junk, 'half', 'x.fits'), 'junk');
        } else {
          await writeFile(junk, 'junk');
          // A final file that is wrong (a non-atomic tool wrote it): must be replaced, not trusted.
          if (ref.type !== 'deletion') await writeFile(out.path, 'wrong');
        }
      }
      expect((await recoverStalled(db, ref, {}, { event: {} })).applied).toBe(true);
      interrupted.push(`${ref.type}:${ref.id}`);
      // The dispatcher schedules the recovered attempt; a worker runs it.
      const next = { ...ref, attempt: 1 };
      const [scheduled] = await dispatchDue(db, ref.type, { limit: 1 });
      expect(scheduled).toEqual(next);
      return h.run(next);
    };
    const outcomes = (await h.runUntilQuiet({ before: crashFirstAttempt })).map((o) => o.outcome);
    expect(interrupted.length).toBe(3 + 2 + 2 + 2 + 3 + 8);
    expect(outcomes.filter((o) => o !== 'completed')).toEqual([]);
    const counts = await countsByTypeAndStatus(h.database.db);
    expect(new Set(counts.map((c) => c.status))).toEqual(new Set(['completed']));
    await expectArchivesIdentical(h, sources);
    expect(await h.partials()).toEqual([]);
  });
});

describe('raw files in a nested directory whose package name is not its path', () => {
  it('deletes the source directory `2026/night 1` of the package `ingest` names `2026_night_1`', async ({
    harness,
  }) => {
    const h = await harness('chain_nested');
    const src = h.locations.byName.get('cha/primecam-raw')!;
    const buffer = h.locations.byName.get('cha/cha-buffer')!;
    const files = [];
    for (const name of ['obs 1.fits', '観測.dat']) {
      const relativePath = `2026/night 1/${name}`;
      const bytes = Buffer.from(`${name}\n`.repeat(50));
      await mkdir(dirname(join(src.root, relativePath)), { recursive: true });
      await writeFile(join(src.root, relativePath), bytes);
      files.push({
        relativePath,
        sizeBytes: bytes.length,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    }
    // The name ingest --group-by dir gives this directory (characters outside [\w.-] become `_`).
    await registerRawFiles(h.database.db, { sourceLocationId: src.id, bufferLocationId: buffer.id }, [
      { name: '2026_night_1', files },
    ]);
    const outcomes = await h.runUntilQuiet();
    expect(outcomes.filter((o) => o.outcome !== 'completed')).toEqual([]);
    const copy = await h.database.db
      .selectFrom('physical_copies')
      .select(['relative_path', 'status'])
      .where('copy_kind', '=', 'raw_files')
      .executeTakeFirstOrThrow();
    expect(copy).toEqual({ relative_path: '2026/night 1', status: 'completed' });
    for (const f of files)
      await expect(readFile(join(src.root, f.relativePath))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
