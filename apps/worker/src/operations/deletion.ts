// deletion: remove a source or buffer copy of a package, only once an archived, verified copy exists —
// checked again here, by hashing the archived file, whatever the database says — and only when the
// row names what it claims to: a copy of the same package, at a source or buffer location, never a
// long-term-archive location, never the verified archive, never a location root.
import { locationRoot, type Database } from '@ccat/db';
import { DeletionNotSafeError, ValidationError } from '@ccat/errors';
import { containedPath, hashFile, locationPath, type ContainedPath } from '@ccat/recovery-handlers';
import { sql, type Kysely } from 'kysely';
import { assertInsideRoot, destroyCopy } from './fenced-files.js';
import { exists, fileIdentity, listTree, type FileIdentity } from './files.js';
import { required } from './required.js';
import type { Operation, OperationContext } from './types.js';

/** Location types a copy may be deleted from (DESIGN §4). */
const DELETABLE_LOCATION_TYPES: ReadonlySet<string> = new Set(['source', 'buffer']);

/** A verified archive: its path, the real path of its file and the file's identity. */
interface VerifiedArchive {
  readonly path: ContainedPath;
  readonly identity: FileIdentity;
}

/**
 * Throws DeletionNotSafeError unless every raw data package has a verified archive whose file is a
 * regular file inside its root (never through a symlink: opened with O_NOFOLLOW, parent resolved
 * inside the root) that hashes right; answers the archives that matched, with their real paths and
 * device/inode, so the copy to delete can be compared with them as files, not as strings.
 */
async function assertArchived(
  ctx: OperationContext,
  db: Kysely<Database>,
  packageIds: readonly string[],
  what: string,
): Promise<VerifiedArchive[]> {
  const verified: VerifiedArchive[] = [];
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
      const archiveRoot = await locationRoot(db, a.destination_location_id);
      const archivePath = locationPath(archiveRoot, a.relative_path);
      try {
        await assertInsideRoot(archiveRoot, archivePath);
        const identity = await fileIdentity(archivePath);
        const h = await hashFile(archivePath, { signal: ctx.signal });
        // The same file after hashing (not swapped meanwhile), with the recorded checksum.
        const after = await fileIdentity(archivePath);
        if (h.sha256 === a.sha256 && after.dev === identity.dev && after.ino === identity.ino) {
          ok = true;
          verified.push({ path: archivePath, identity });
          break;
        }
      } catch (e) {
        ctx.signal.throwIfAborted();
        const code = (e as NodeJS.ErrnoException).code;
        // Not a verified copy: missing, a symlink, a FIFO, outside its root.
        if (!(e instanceof ValidationError) && code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
        ctx.logger.warn({ err: (e as Error).message, archive: archivePath }, 'archive cannot be verified');
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

/**
 * The files and directories a deletion of `copy` removes, after checking what is on disk (lstat,
 * nothing followed): a packaged copy must be one regular file; a raw-files directory must hold
 * nothing but directories and the regular files registered for its own package (by path under the
 * location's root) — a file of another package (even one registered at another location row on the
 * same directory), an unregistered file (written after packaging), a symlink or special file makes
 * the deletion refused with DeletionNotSafeError, nothing touched.
 */
async function whatToDelete(
  db: Kysely<Database>,
  copy: CopyRow,
  root: string,
  path: ContainedPath,
  what: string,
): Promise<{ files: ContainedPath[]; directories: ContainedPath[] }> {
  const refuse = (why: string): never => {
    throw new DeletionNotSafeError(`${what}: ${why}; nothing was deleted`, {
      context: { locationId: copy.location_id, relativePath: copy.relative_path, copyKind: copy.copy_kind },
    });
  };
  const tree = await listTree(path);
  if (copy.copy_kind !== 'raw_files') {
    if (tree.kind !== 'file') refuse(`it is ${tree.kind}, not a regular file`);
    return { files: [path], directories: [] };
  }
  if (tree.kind !== 'directory') refuse(`it is ${tree.kind}, not a directory of raw files`);
  const registered = new Set(
    (
      await db
        .selectFrom('raw_data_files')
        .select('relative_path')
        .where('raw_data_package_id', '=', copy.raw_data_package_id!)
        .execute()
    ).map((f) => f.relative_path),
  );
  const files: ContainedPath[] = [];
  const directories: ContainedPath[] = [path];
  for (const entry of tree.entries) {
    const relative = `${copy.relative_path}/${entry.relative}`;
    if (entry.kind === 'directory') directories.push(containedPath(path, entry.relative));
    else if (entry.kind !== 'file')
      refuse(`${relative} is ${entry.kind}: a raw-files directory holds only regular files`);
    else if (!registered.has(relative))
      refuse(
        `${relative} is not a registered raw file of this package (another package's, or never packaged)`,
      );
    else files.push(containedPath(path, entry.relative));
  }
  return { files, directories };
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
    // Every check comes before anything is touched: the path (never a root, never outside it, also
    // through symlinks), the package, the location type, the archive (re-verified), that the two are
    // not the same file, and what is on disk.
    const root = await locationRoot(db, copy.location_id);
    const path = locationPath(root, copy.relative_path);
    await assertSamePackage(db, copy, what);
    const archives = await assertArchived(ctx, db, packageIds, what);
    const hit = archives.find((a) => overlaps(a.path, path) || overlaps(a.identity.realPath, path));
    if (hit !== undefined)
      throw new DeletionNotSafeError(`${what}: it is the verified archive ${hit.path}; nothing was deleted`);
    // deleted_at, written by the fenced completion statement itself.
    const deleted = { deleted: true } as const;
    // Already gone (an earlier attempt deleted it but did not record it).
    if (!(await exists(path))) return { bytes: 0, record: deleted };
    // A symlinked directory on the way must not carry the path out of its root.
    await assertInsideRoot(root, path).catch((e: unknown) => {
      throw e instanceof ValidationError
        ? new DeletionNotSafeError(`${what}: ${e.message}`, { cause: e })
        : e;
    });
    const { files, directories } = await whatToDelete(db, copy, root, path, what);
    for (const f of files) {
      const id = await fileIdentity(f);
      const same = archives.find(
        (a) =>
          (a.identity.dev === id.dev && a.identity.ino === id.ino) ||
          overlaps(a.identity.realPath, id.realPath),
      );
      if (same !== undefined)
        throw new DeletionNotSafeError(
          `${what}: ${f} is the same file as the verified archive ${same.path}; nothing was deleted`,
        );
    }
    await ctx.checkpoint('start');
    // Fenced; file by file, directories only when empty (fenced-files.ts).
    const { kept } = await destroyCopy(ctx, root, files, directories);
    if (kept.length > 0)
      ctx.logger.warn(
        { kept: kept.slice(0, 20) },
        'deleted the copy; directories that gained other files after the checks were kept',
      );
    await ctx.checkpoint('middle');
    return { bytes: 0, record: deleted };
  },
};
