// Storage faults on real mounts (needs root: mounts a tiny tmpfs, unmounted at the end; the CI runs
// as root). The destination buffer fills up during unpack; the archive location is read-only. What
// should hold: the operations end failed with a storage code, no partial is left, nothing is deleted
// at the source. Adversary finding 9: a read-only archive was recorded as FILE_NOT_FOUND, because a
// recursive mkdir reports ENOENT there; files.ts's ensureDirectory now surfaces the real EROFS.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainedPath } from '@ccat/recovery-handlers';
import * as tar from 'tar';
import { afterEach, beforeAll, describe, expect } from 'vitest';
import { extractTar } from '../../src/operations/files.js';
import { workerTest as it } from '../harness.js';
import { tree } from './common.js';

const mounts: string[] = [];
beforeAll(() => {
  if (process.getuid?.() !== 0)
    throw new Error('storage-faults.test.ts mounts tmpfs file systems and must run as root (the CI does)');
});
afterEach(() => {
  for (const m of mounts.splice(0)) execFileSync('umount', [m]);
});
async function mountTmpfs(dir: string, options: string) {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  mounts.push(dir);
}

describe('adversary: storage faults', () => {
  it('ENOSPC at the destination buffer during unpack', async ({ harness }) => {
    const h = await harness('adv_enospc');
    const dest = h.locations.byName.get('col/col-buffer')!.root;
    await h.seed(2, 8);
    const source = h.locations.byName.get('cha/primecam-raw')!.root;
    const before = await tree(source);
    // Room for the arrived transfer package (the raw bytes plus tar headers), not for it and its
    // unpacked tree (twice the raw bytes): sized from what was seeded, since file sizes are random.
    const rawBytes = [...before.values()].reduce((n, b64) => n + Buffer.from(b64, 'base64').length, 0);
    await mountTmpfs(dest, `size=${Math.ceil((rawBytes * 1.5 + 64 * 1024) / 4096) * 4}k`);
    const outcomes = await h.runUntilQuiet();
    const rows = await h.database.db
      .selectFrom('data_transfers')
      .select(['unpack_status', 'unpack_last_error_code', 'unpack_attempt'])
      .execute();
    const partials = await h.partials();
    expect({ rows, partials, sourceKept: (await tree(source)).size === before.size }).toEqual({
      rows: rows.map(() =>
        expect.objectContaining({ unpack_status: 'failed', unpack_last_error_code: 'STORAGE_FULL' }),
      ),
      partials: [],
      sourceKept: true,
    });
    expect(outcomes.length).toBeGreaterThan(0);
  });

  it('an extraction that fills the disk settles only after every file it started is closed', async () => {
    // Before, tar's strict mode rejected at the first ENOSPC while other entries were still being
    // created, so the failure path's removal of the partial raced them and one could outlive it.
    const work = await mkdtemp(join(tmpdir(), 'ccat-extract-'));
    const names = Array.from({ length: 64 }, (_, i) => `f${i}`);
    await mkdir(join(work, 'src'));
    for (const f of names) await writeFile(join(work, 'src', f), randomBytes(16 * 1024));
    const archive = join(work, 'a.tar') as ContainedPath;
    await tar.create({ cwd: join(work, 'src'), file: archive }, names);
    const dest = join(work, 'dest');
    await mountTmpfs(dest, 'size=256k');
    const partial = join(dest, 'x.ccat-partial-1') as ContainedPath;
    await expect(extractTar(archive, partial)).rejects.toMatchObject({ code: 'ENOSPC' });
    await rm(partial, { recursive: true });
    expect(await readdir(dest)).toEqual([]);
    execFileSync('umount', [mounts.pop()!]);
    await rm(work, { recursive: true });
  });

  it('a file whose last write the full disk cut short fails the extraction with ENOSPC', async () => {
    // tar's file writer ignores short writes: a 48 KiB file written in one write(2) to a file system
    // with 32 KiB free took 32 KiB, no error, and the extraction resolved with a truncated file (the
    // flaky ENOSPC test above then failed on the truncated inner archive, as TAR_BAD_ARCHIVE).
    const work = await mkdtemp(join(tmpdir(), 'ccat-extract-'));
    await mkdir(join(work, 'src'));
    await writeFile(join(work, 'src', 'big'), randomBytes(48 * 1024));
    const archive = join(work, 'a.tar') as ContainedPath;
    await tar.create({ cwd: join(work, 'src'), file: archive }, ['big']);
    const dest = join(work, 'dest');
    await mountTmpfs(dest, 'size=32k');
    const partial = join(dest, 'x.ccat-partial-1') as ContainedPath;
    await expect(extractTar(archive, partial)).rejects.toMatchObject({ code: 'ENOSPC' });
    await rm(partial, { recursive: true });
    execFileSync('umount', [mounts.pop()!]);
    await rm(work, { recursive: true });
  });

  it('EROFS at the long-term archive', async ({ harness }) => {
    const h = await harness('adv_erofs');
    const lta = h.locations.byName.get('col/col-lta')!.root;
    await mountTmpfs(lta, 'size=1m,ro');
    await h.seed(2, 2);
    const source = h.locations.byName.get('cha/primecam-raw')!.root;
    const before = await tree(source);
    await h.runUntilQuiet();
    const rows = await h.database.db
      .selectFrom('long_term_archive_transfers')
      .select(['status', 'last_error_code', 'last_error_message'])
      .execute();
    expect({
      rows,
      partials: await h.partials(),
      sourceKept: (await tree(source)).size === before.size,
    }).toEqual({
      rows: rows.map(() =>
        expect.objectContaining({ status: 'failed', last_error_code: 'READ_ONLY_STORAGE' }),
      ),
      partials: [],
      sourceKept: true,
    });
  });
});
