// deletion: remove a source copy, only once an archived, verified copy exists — checked again here,
// by hashing the archived file, whatever the database says.
import { rename, rm } from 'node:fs/promises';
import type { Database } from '@ccat/db';
import { DeletionNotSafeError } from '@ccat/errors';
import { locationPath, partialPath } from '@ccat/recovery-handlers';
import { sql, type Kysely } from 'kysely';
import { exists, fileMatches } from './files.js';
import { locationRoot, required } from './locations.js';
import type { Operation, OperationContext } from './types.js';

/** Throws DeletionNotSafeError unless every raw data package has a verified archive whose file hashes right. */
async function assertArchived(
  ctx: OperationContext,
  db: Kysely<Database>,
  packageIds: readonly string[],
  what: string,
): Promise<void> {
  if (packageIds.length === 0) throw new DeletionNotSafeError(`${what}: no raw data packages to check`);
  for (const id of packageIds) {
    const archived = await db
      .selectFrom('long_term_archive_transfers as a')
      .innerJoin('raw_data_packages as r', 'r.id', 'a.raw_data_package_id')
      .select(['a.destination_location_id', 'a.relative_path', 'r.sha256', 'r.name'])
      .where('a.raw_data_package_id', '=', id)
      .where('a.status', '=', 'completed')
      .where('a.verified_at', 'is not', null)
      .execute();
    let ok = false;
    for (const a of archived) {
      if (
        await fileMatches(
          locationPath(await locationRoot(db, a.destination_location_id), a.relative_path),
          a.sha256,
          ctx.signal,
        )
      ) {
        ok = true;
        break;
      }
    }
    if (!ok) {
      throw new DeletionNotSafeError(
        `${what}: raw data package ${id} has no verified archived copy that matches its checksum`,
        {
          context: { rawDataPackageId: id },
        },
      );
    }
  }
}

export const deletion: Operation = {
  async run(ctx) {
    const { db, ref } = ctx;
    const copy = required(
      await db
        .selectFrom('physical_copies')
        .select([
          'location_id',
          'relative_path',
          'copy_kind',
          'raw_data_package_id',
          'data_transfer_package_id',
        ])
        .where('id', '=', ref.id)
        .executeTakeFirst(),
      `physical copy ${ref.id}`,
    );
    const what = `${copy.copy_kind} copy ${copy.relative_path}`;
    const packageIds =
      copy.raw_data_package_id !== null
        ? [copy.raw_data_package_id]
        : (
            await db
              .selectFrom('raw_data_packages')
              .select('id')
              .where('data_transfer_package_id', '=', copy.data_transfer_package_id ?? '0')
              .execute()
          ).map((r) => r.id);
    await assertArchived(ctx, db, packageIds, what);
    const path = locationPath(await locationRoot(db, copy.location_id), copy.relative_path);
    const markDeleted = async (trx: typeof db) => {
      await trx
        .updateTable('physical_copies')
        .set({ deleted_at: sql<Date>`now()` })
        .where('id', '=', ref.id)
        .execute();
    };
    // Already gone (an earlier attempt deleted it but did not record it).
    if (!(await exists(path))) return { bytes: 0, finalize: markDeleted };
    await ctx.checkpoint('start');
    await ctx.assertLease();
    // Rename first: a half-deleted tree is then a tombstone that cleanup may finish, never a copy
    // that looks whole.
    const tomb = partialPath(path, ref.attempt);
    await rename(path, tomb);
    await ctx.checkpoint('middle');
    await rm(tomb, { recursive: true, force: true });
    return { bytes: 0, finalize: markDeleted };
  },
};
