// data_transfer_package: bundle several raw data packages into one transfer archive at the BUFFER.
import { stat } from 'node:fs/promises';
import { DataCorruptionError, PackageError } from '@ccat/errors';
import { locationPath, partialPath } from '@ccat/recovery-handlers';
import { createTar, fileMatches, moveIntoPlace } from './files.js';
import { locationRoot, required } from './locations.js';
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
    if (await fileMatches(final, pkg.sha256, signal)) return { bytes: 0 };
    await ctx.checkpoint('start');
    for (const m of members) {
      const s = await stat(locationPath(bufferRoot, m.relative_path));
      if (s.size !== Number(m.size_bytes)) {
        throw new DataCorruptionError(
          `raw data package ${m.name} is ${s.size} bytes at the buffer, the database says ${m.size_bytes}`,
          {
            context: { package: m.name, expected: Number(m.size_bytes), got: s.size },
          },
        );
      }
    }
    const partial = partialPath(final, ref.attempt);
    const tarred = await createTar(
      bufferRoot,
      members.map((m) => m.relative_path),
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
          .updateTable('data_transfer_packages')
          .set({ sha256: tarred.sha256, size_bytes: tarred.size })
          .where('id', '=', ref.id)
          .execute();
      },
    };
  },
};
