// raw_data_package: tar the package's raw files at the SOURCE into one archive at the BUFFER.
import { PackageError } from '@ccat/errors';
import { locationPath } from '@ccat/recovery-handlers';
import { assertInsideRoot } from './fenced-files.js';
import { fileMatches } from './files.js';
import { locationRoot } from '@ccat/db';
import { required } from './required.js';
import { writeTarPackage } from './tar-package.js';
import type { Operation } from './types.js';

export const rawDataPackage: Operation = {
  async run(ctx) {
    const { db, ref, signal } = ctx;
    const pkg = required(
      await db
        .selectFrom('raw_data_packages')
        .select(['name', 'relative_path', 'sha256', 'source_location_id', 'buffer_location_id'])
        .where('id', '=', ref.id)
        .executeTakeFirst(),
      `raw_data_package ${ref.id}`,
    );
    const files = await db
      .selectFrom('raw_data_files')
      .select(['relative_path', 'size_bytes'])
      .where('raw_data_package_id', '=', ref.id)
      .orderBy('relative_path')
      .execute();
    if (files.length === 0)
      throw new PackageError(`raw data package ${pkg.name} has no raw files`, { retryable: false });
    const sourceRoot = await locationRoot(db, pkg.source_location_id);
    const bufferRoot = await locationRoot(db, pkg.buffer_location_id);
    const final = locationPath(bufferRoot, pkg.relative_path);
    await assertInsideRoot(bufferRoot, final);
    // An earlier attempt finished the archive but not the bookkeeping: nothing to redo.
    if (await fileMatches(final, pkg.sha256, signal)) return { bytes: 0 };
    await ctx.checkpoint('start');
    const tarred = await writeTarPackage(
      ctx,
      sourceRoot,
      files.map((f) => ({
        relativePath: f.relative_path,
        expectedBytes: Number(f.size_bytes),
        mismatch: (got) => `raw file ${f.relative_path} is ${got} bytes`,
        context: { file: f.relative_path },
      })),
      { root: bufferRoot, path: final },
    );
    return {
      bytes: tarred.size,
      finalize: async (trx) => {
        await trx
          .updateTable('raw_data_packages')
          .set({ sha256: tarred.sha256, size_bytes: tarred.size })
          .where('id', '=', ref.id)
          .execute();
      },
    };
  },
};
