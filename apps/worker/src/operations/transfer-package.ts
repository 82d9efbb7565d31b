// data_transfer_package: bundle several raw data packages into one transfer archive at the BUFFER.
import { PackageError } from '@ccat/errors';
import { required } from './required.js';
import { makePackage } from './tar-package.js';
import type { Operation } from './types.js';

export const dataTransferPackage: Operation = {
  async run(ctx) {
    const { db, ref } = ctx;
    const pkg = required(
      await db
        .selectFrom('data_transfer_packages')
        .select(['name', 'relative_path', 'sha256', 'buffer_location_id'])
        .where('id', '=', ref.id)
        .executeTakeFirst(),
      `data_transfer_package ${ref.id}`,
    );
    const members = await db
      .selectFrom('raw_data_packages')
      .select(['name', 'relative_path', 'size_bytes', 'status', 'buffer_location_id'])
      .where('data_transfer_package_id', '=', ref.id)
      .orderBy('id')
      .execute();
    if (members.length === 0)
      throw new PackageError(`transfer package ${pkg.name} has no raw data packages`, { retryable: false });
    const notReady = members.filter(
      (m) =>
        m.status !== 'completed' || m.size_bytes === null || m.buffer_location_id !== pkg.buffer_location_id,
    );
    if (notReady.length > 0) {
      throw new PackageError(
        `transfer package ${pkg.name}: ${notReady.length} raw data packages are not packaged at its buffer`,
        {
          retryable: false,
          context: { packages: notReady.map((m) => m.name).slice(0, 20) },
        },
      );
    }
    return makePackage(ctx, {
      table: 'data_transfer_packages',
      row: pkg,
      inputs: members.map((m) => ({
        relativePath: m.relative_path,
        expectedBytes: Number(m.size_bytes),
        mismatch: (got) => `raw data package ${m.name} is ${got} bytes at the buffer`,
        context: { package: m.name },
      })),
    });
  },
};
