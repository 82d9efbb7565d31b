// Registering raw data files (issue 16): the database side of `ccat-recovery ingest`, for any
// service that brings its own files. Files are keyed by (source location, relative path): one already
// registered with the same size and sha256 is skipped, one with a different size or sha256 is refused,
// never overwritten. Each package is one transaction: its row and all its files, or nothing.
import { ValidationError } from '@ccat/errors';
import type { Kysely } from 'kysely';
import { checkStoredName, checkStoredPath } from './sanitize.js';
import type { Database } from './schema.js';

export interface RawFileInput {
  /** Relative to the source location's root, `/`-separated. */
  readonly relativePath: string;
  readonly sizeBytes: number;
  /** Lower-case hex. */
  readonly sha256: string;
}

export interface RawPackageInput {
  /** Wanted name; a taken one gets the first free suffix `-2`, `-3`… */
  readonly name: string;
  readonly files: readonly RawFileInput[];
}

export interface IngestLocations {
  readonly sourceLocationId: number;
  readonly bufferLocationId: number;
}

/** How the given files stand against what is registered at the source location. */
export interface RawFileSorting {
  readonly fresh: RawFileInput[];
  readonly unchanged: RawFileInput[];
  /** Registered under the same path with another size or sha256. */
  readonly conflicts: { file: RawFileInput; registered: { sizeBytes: number; sha256: string } }[];
}

/** Sorts `files` into fresh, unchanged (same path, size and sha256) and conflicting. Reads only. */
export async function sortRawFiles(
  db: Kysely<Database>,
  sourceLocationId: number,
  files: readonly RawFileInput[],
): Promise<RawFileSorting> {
  const known = new Map<string, { sizeBytes: number; sha256: string }>();
  for (let i = 0; i < files.length; i += 5000) {
    const rows = await db
      .selectFrom('raw_data_files')
      .select(['relative_path', 'size_bytes', 'sha256'])
      .where('source_location_id', '=', sourceLocationId)
      .where(
        'relative_path',
        'in',
        files.slice(i, i + 5000).map((f) => f.relativePath),
      )
      .execute();
    for (const r of rows) known.set(r.relative_path, { sizeBytes: Number(r.size_bytes), sha256: r.sha256 });
  }
  const sorting: RawFileSorting = { fresh: [], unchanged: [], conflicts: [] };
  for (const file of files) {
    const registered = known.get(file.relativePath);
    if (registered === undefined) sorting.fresh.push(file);
    else if (registered.sizeBytes === file.sizeBytes && registered.sha256 === file.sha256)
      sorting.unchanged.push(file);
    else sorting.conflicts.push({ file, registered });
  }
  return sorting;
}

/** The error for files registered with another size or sha256 (code RAW_FILE_CONFLICT). */
export function rawFileConflict(conflicts: RawFileSorting['conflicts']): ValidationError {
  const lines = conflicts
    .slice(0, 10)
    .map(
      ({ file, registered: r }) =>
        `${file.relativePath}: registered ${r.sizeBytes} bytes sha256 ${r.sha256.slice(0, 12)}…, now ${file.sizeBytes} bytes sha256 ${file.sha256.slice(0, 12)}…`,
    );
  const more = conflicts.length > 10 ? [`… and ${conflicts.length - 10} more`] : [];
  return new ValidationError(
    `${conflicts.length} file(s) already registered with another size or sha256; nothing registered:\n  ${[...lines, ...more].join('\n  ')}`,
    { code: 'RAW_FILE_CONFLICT', context: { conflicts: conflicts.length } },
  );
}

export interface RegisteredPackage {
  readonly id: string;
  readonly name: string;
  readonly files: number;
  readonly bytes: number;
}

/**
 * Registers `packages` at `locations`: per package, one transaction inserts a pending
 * raw_data_package (relative path `raw/<name>.tar`) and its fresh files; files already registered
 * unchanged are skipped, and a package left with none is not created. Safe to re-run (idempotent).
 *
 * @throws ValidationError `RAW_FILE_CONFLICT` before anything is written when any file is registered
 *   with another size or sha256; a name or path too long to store (NAME_MAX, PATH_MAX). A concurrent
 *   registration of the same file fails that package's transaction (unique violation), nothing partial.
 */
export async function registerRawFiles(
  db: Kysely<Database>,
  locations: IngestLocations,
  packages: readonly RawPackageInput[],
): Promise<{ packages: RegisteredPackage[]; skippedFiles: number }> {
  const all = packages.flatMap((p) => p.files);
  for (const f of all) checkStoredPath(f.relativePath, 'raw file path');
  const sorting = await sortRawFiles(db, locations.sourceLocationId, all);
  if (sorting.conflicts.length > 0) throw rawFileConflict(sorting.conflicts);
  const fresh = new Set(sorting.fresh.map((f) => f.relativePath));
  const done: RegisteredPackage[] = [];
  for (const p of packages) {
    const files = p.files.filter((f) => fresh.has(f.relativePath));
    if (files.length === 0) continue;
    checkStoredName(`${p.name}-999.tar`, 'package name');
    done.push(
      await db.transaction().execute(async (trx) => {
        const taken = new Set(
          (
            await trx
              .selectFrom('raw_data_packages')
              .select('name')
              .where('name', 'like', `${p.name.replace(/[\\%_]/g, '\\$&')}%`)
              .execute()
          ).map((r) => r.name),
        );
        let name = p.name;
        for (let n = 2; taken.has(name); n++) name = `${p.name}-${n}`;
        const bytes = files.reduce((sum, f) => sum + f.sizeBytes, 0);
        const pkg = await trx
          .insertInto('raw_data_packages')
          .values({
            name,
            source_location_id: locations.sourceLocationId,
            buffer_location_id: locations.bufferLocationId,
            relative_path: `raw/${name}.tar`,
          })
          .returning('id')
          .executeTakeFirstOrThrow();
        await trx
          .insertInto('raw_data_files')
          .values(
            files.map((f) => ({
              source_location_id: locations.sourceLocationId,
              raw_data_package_id: pkg.id,
              relative_path: f.relativePath,
              size_bytes: f.sizeBytes,
              sha256: f.sha256,
            })),
          )
          .execute();
        return { id: String(pkg.id), name, files: files.length, bytes };
      }),
    );
  }
  return { packages: done, skippedFiles: sorting.unchanged.length };
}
