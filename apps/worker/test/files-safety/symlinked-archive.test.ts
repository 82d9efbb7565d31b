// Adversary finding 2: deletion's "archive re-verified first" followed symlinks, and its "never the
// verified archive" check compared path strings. An archive file that is a symlink to the buffer copy
// verified, and then the deletion removed the only real copy: the row ended `completed`, the archive
// a dangling link. Now the archive is opened with O_NOFOLLOW (a symlink never verifies) and compared
// with the copy by real path and device/inode (a hard link is the same file, never a second copy).
import { link, readFile, rename, symlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { workerTest as it } from '../harness.js';
import { runCopy } from './common.js';

describe('an archive that is the buffer copy itself', () => {
  it.for(['symlink', 'hard link'])(
    'an archive that is a %s to the buffer copy: the deletion is refused and the only copy stays',
    async (kind, { harness }) => {
      const h = await harness('adv_symarch');
      const db = h.database.db;
      await h.seed(1, 2);
      expect((await h.runUntilQuiet()).filter((o) => o.outcome !== 'completed')).toEqual([]);
      const pkg = await db
        .selectFrom('raw_data_packages')
        .select(['id', 'relative_path', 'buffer_location_id'])
        .executeTakeFirstOrThrow();
      const a = await db
        .selectFrom('long_term_archive_transfers')
        .select('relative_path')
        .where('raw_data_package_id', '=', pkg.id)
        .executeTakeFirstOrThrow();
      const lta = h.locations.byName.get('col/col-lta')!.root;
      const buffer = [...h.locations.byName.values()].find((l) => l.id === pkg.buffer_location_id)!.root;
      // The archive's bytes now live at the buffer; the archive holds a symlink to them.
      const archivePath = join(lta, a.relative_path);
      const bufferPath = join(buffer, pkg.relative_path);
      const bytes = await readFile(archivePath);
      await rename(archivePath, bufferPath);
      if (kind === 'symlink') await symlink(bufferPath, archivePath);
      else await link(bufferPath, archivePath);
      // The buffer copy's deletion row (the pipeline's own already ran and completed: run it again).
      await db.deleteFrom('physical_copies').where('relative_path', '=', pkg.relative_path).execute();
      const { row } = await runCopy(h, {
        raw_data_package_id: pkg.id,
        location_id: pkg.buffer_location_id,
        relative_path: pkg.relative_path,
        copy_kind: 'raw_data_package',
      });
      // What should hold: the bytes still exist somewhere (refused: the archive is the copy itself).
      const survived = await stat(bufferPath).then(
        () => true,
        () => false,
      );
      expect({ status: row!.status, survived, bytes: bytes.length }).toEqual({
        status: 'failed',
        survived: true,
        bytes: bytes.length,
      });
    },
  );
});
