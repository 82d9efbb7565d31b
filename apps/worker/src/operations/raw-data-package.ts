// raw_data_package: tar the package's raw files at the SOURCE into one archive at the BUFFER.
import { stat } from 'node:fs/promises';
import { DataCorruptionError, PackageError } from '@ccat/errors';
import { locationPath, partialPath } from '@ccat/recovery-handlers';
import { createTar, fileMatches, moveIntoPlace } from './files.js';
import { locationRoot, required } from './locations.js';
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
    const final = locationPath(await locationRoot(db, pkg.buffer_location_id), pkg.relative_path);
    // An earlier attempt finished the archive but not the bookkeeping: nothing to redo.
    if (await fileMatches(final, pkg.sha256, signal)) return { bytes: 0 };
    await ctx.checkpoint('start');
    for (const f of files) {
      const s = await stat(locationPath(sourceRoot, f.relative_path));
      if (s.size !== Number(f.size_bytes)) {
        throw new DataCorruptionError(
          `raw file ${f.relative_path} is ${s.size} bytes, the database says ${f.size_bytes}`,
          {
            context: { file: f.relative_path, expected: Number(f.size_bytes), got: s.size },
          },
        );
      }
    }
    const partial = partialPath(final, ref.attempt);
    const tarred = await createTar(
      sourceRoot,
      files.map((f) => f.relative_path),
      partial,
      { signal, onBytes: (n) => ctx.progress(n) },
    );
    await ctx.checkpoint('middle');
    await ctx.assertLease();
    await moveIntoPlace(partial, final);
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
