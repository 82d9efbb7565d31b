// deletion: remove a source or buffer copy of a package, only once an archived, verified copy exists —
// checked again here, by hashing the archived file, whatever the database says — and only when the
// row names what it claims to: a copy of the same package, at a source or buffer location, never a
// long-term-archive location, never the verified archive, never a location root.
import { realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Database } from '@ccat/db';
import { DeletionNotSafeError } from '@ccat/errors';
import { locationPath, type ContainedPath } from '@ccat/recovery-handlers';
import { sql, type Kysely } from 'kysely';
import { destroy } from './fenced-files.js';
import { exists, fileMatches } from './files.js';
import { locationRoot, required } from './locations.js';
import type { Operation, OperationContext } from './types.js';

/** Location types a copy may be deleted from (DESIGN §4). */
const DELETABLE_LOCATION_TYPES: ReadonlySet<string> = new Set(['source', 'buffer']);

/**
 * Throws DeletionNotSafeError unless every raw data package has a verified archive whose file hashes
 * right; answers the paths of the archived copies that matched.
 */
async function assertArchived(
  ctx: OperationContext,
  db: Kysely<Database>,
  packageIds: readonly string[],
  what: string,
): Promise<ContainedPath[]> {
  const verified: ContainedPath[] = [];
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
      const archivePath = locationPath(await locationRoot(db, a.destination_location_id), a.relative_path);
      if (await fileMatches(archivePath, a.sha256, ctx.signal)) {
        ok = true;
        verified.push(archivePath);
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
  return verified;
}

/** Whether one of two paths is the other or lies inside it. */
const overlaps = (a: string, b: string) => a === b || a.startsWith(`${b}/`) || b.startsWith(`${a}/`);

interface CopyRow {
  readonly location_id: number;
  readonly relative_path: string;
  readonly copy_kind: string;
  readonly raw_data_package_id: string | null;
  readonly data_transfer_package_id: string | null;
}

/**
 * Throws DeletionNotSafeError unless the row names a copy of its own package where that package
 * puts it: raw files under their package's directory at its source location (and no other
 * package's raw files there), a raw data package archive at its buffer, a transfer package at its
 * buffer; and the location is a source or buffer.
 */
async function assertSamePackage(db: Kysely<Database>, copy: CopyRow, what: string): Promise<void> {
  const refuse = (why: string): never => {
    throw new DeletionNotSafeError(`${what}: ${why}; nothing was deleted`, {
      context: { locationId: copy.location_id, relativePath: copy.relative_path, copyKind: copy.copy_kind },
    });
  };
  const location = await db
    .selectFrom('data_locations')
    .select('location_type')
    .where('id', '=', copy.location_id)
    .executeTakeFirst();
  if (location === undefined || !DELETABLE_LOCATION_TYPES.has(location.location_type))
    refuse(`location ${copy.location_id} is ${location?.location_type ?? 'missing'}, not a source or buffer`);
  switch (copy.copy_kind) {
    case 'raw_files': {
      if (copy.raw_data_package_id === null) refuse('a raw files copy names no raw data package');
      const r = await db
        .selectFrom('raw_data_packages')
        .select('source_location_id')
        .where('id', '=', copy.raw_data_package_id!)
        .executeTakeFirst();
      if (r?.source_location_id !== copy.location_id) refuse("it is not at its package's source location");
      const prefix = `${copy.relative_path}/`;
      const under = sql<boolean>`left(relative_path, ${prefix.length}) = ${prefix}`;
      const counts = await db
        .selectFrom('raw_data_files')
        .select([
          sql<string>`count(*) FILTER (WHERE raw_data_package_id = ${copy.raw_data_package_id})`.as('own'),
          sql<string>`count(*) FILTER (WHERE raw_data_package_id = ${copy.raw_data_package_id} AND ${under})`.as(
            'own_under',
          ),
          sql<string>`count(*) FILTER (WHERE raw_data_package_id IS DISTINCT FROM ${copy.raw_data_package_id} AND ${under})`.as(
            'others_under',
          ),
        ])
        .where('source_location_id', '=', copy.location_id)
        .executeTakeFirstOrThrow();
      if (Number(counts.own) === 0 || counts.own !== counts.own_under)
        refuse("the directory does not hold exactly its package's raw files");
      if (Number(counts.others_under) > 0)
        refuse(`the directory also holds ${counts.others_under} raw files of other packages`);
      return;
    }
    case 'raw_data_package': {
      if (copy.raw_data_package_id === null) refuse('a raw data package copy names no raw data package');
      const r = await db
        .selectFrom('raw_data_packages')
        .select(['buffer_location_id', 'relative_path'])
        .where('id', '=', copy.raw_data_package_id!)
        .executeTakeFirst();
      if (r?.buffer_location_id !== copy.location_id || r.relative_path !== copy.relative_path)
        refuse('it is not where its raw data package is packaged (its buffer location and path)');
      return;
    }
    case 'data_transfer_package': {
      if (copy.data_transfer_package_id === null) refuse('a transfer package copy names no transfer package');
      const p = await db
        .selectFrom('data_transfer_packages')
        .select(['buffer_location_id', 'relative_path'])
        .where('id', '=', copy.data_transfer_package_id!)
        .executeTakeFirst();
      if (p?.buffer_location_id !== copy.location_id || p.relative_path !== copy.relative_path)
        refuse('it is not where its transfer package was bundled (its buffer location and path)');
      return;
    }
    default:
      refuse(`unknown copy kind ${copy.copy_kind}`);
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
    // Every check comes before anything is touched: the path (never a root, never outside it), the
    // package, the location type, the archive (re-verified), and that the two do not overlap.
    const root = await locationRoot(db, copy.location_id);
    const path = locationPath(root, copy.relative_path);
    await assertSamePackage(db, copy, what);
    const archives = await assertArchived(ctx, db, packageIds, what);
    const hit = archives.find((a) => overlaps(a, path));
    if (hit !== undefined)
      throw new DeletionNotSafeError(`${what}: it is the verified archive ${hit}; nothing was deleted`);
    const markDeleted = async (trx: typeof db) => {
      await trx
        .updateTable('physical_copies')
        .set({ deleted_at: sql<Date>`now()` })
        .where('id', '=', ref.id)
        .execute();
    };
    // Already gone (an earlier attempt deleted it but did not record it).
    if (!(await exists(path))) return { bytes: 0, finalize: markDeleted };
    // A symlinked directory on the way must not carry the path out of its root.
    const [realRoot, realParent] = await Promise.all([realpath(root), realpath(dirname(path))]);
    if (realParent !== realRoot && !realParent.startsWith(`${realRoot}/`))
      throw new DeletionNotSafeError(`${what}: it resolves outside its location root; nothing was deleted`);
    await ctx.checkpoint('start');
    // Fenced; renamed to this attempt's tomb first, so a half-deleted tree never looks whole.
    await destroy(ctx, path);
    await ctx.checkpoint('middle');
    return { bytes: 0, finalize: markDeleted };
  },
};
