// data_transfer_package: bundle several raw data packages into one transfer archive at the BUFFER.
import { PackageError } from '@ccat/errors';
import { locationPath } from '@ccat/recovery-handlers';
import { assertInsideRoot } from './fenced-files.js';
import { fileMatches } from './files.js';
import { locationRoot } from '@ccat/db';
import { required } from './required.js';
import { writeTarPackage } from './tar-package.js';
import type { Operation } from './types.js';

export const dataTransferPackage: Operation = {
  async run(ctx) {
    const { db, ref, signal } = ctx;
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
    const bufferRoot = await locationRoot(db, pkg.buffer_location_id);
    const final = locationPath(bufferRoot, pkg.relative_path);
    await assertInsideRoot(bufferRoot, final);
    if (await fileMatches(final, pkg.sha256, signal)) return { bytes: 0 };
    await ctx.checkpoint('start');
    const tarred = await writeTarPackage(
      ctx,
      bufferRoot,
      members.map((m) => ({
        relativePath: m.relative_path,
        expectedBytes: Number(m.size_bytes),
        mismatch: (got) => `raw data package ${m.name} is ${got} bytes at the buffer`,
        context: { package: m.name },
      })),
      { root: bufferRoot, path: final },
    );
    return {
      bytes: tarred.size,
      finalize: async (trx) => {
        await trx
          .updateTable('data_transfer_packages')
          .set({ sha256: tarred.sha256, size_bytes: tarred.size })
          .where('id', '=', ref.id)
          .execute();
      },
    };
  },
};
