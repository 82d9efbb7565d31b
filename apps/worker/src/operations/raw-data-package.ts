// raw_data_package: tar the package's raw files at the SOURCE into one archive at the BUFFER.
import { PackageError } from '@ccat/errors';
import { required } from './required.js';
import { makePackage } from './tar-package.js';
import type { Operation } from './types.js';

export const rawDataPackage: Operation = {
  async run(ctx) {
    const { db, ref } = ctx;
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
    return makePackage(ctx, {
      table: 'raw_data_packages',
      row: pkg,
      sourceLocationId: pkg.source_location_id,
      inputs: files.map((f) => ({
        relativePath: f.relative_path,
        expectedBytes: Number(f.size_bytes),
        mismatch: (got) => `raw file ${f.relative_path} is ${got} bytes`,
        context: { file: f.relative_path },
      })),
    });
  },
};
