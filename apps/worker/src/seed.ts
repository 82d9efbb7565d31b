// A synthetic night of observations: two sites with real directories, raw files of random bytes at
// the source, their sha256 in raw_data_files, and pending raw_data_package operations. Used by the
// demo and the tests.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkStoredName, checkStoredPath, type Database } from '@ccat/db';
import type { Kysely } from 'kysely';

export interface SeedSite {
  readonly name: string;
  readonly shortName: string;
  /** Location name → type. */
  readonly locations: Readonly<Record<string, 'source' | 'buffer' | 'long_term_archive'>>;
}

/** The CCAT shape: the telescope site with a source and a buffer; an archive site with a buffer and a long-term archive. */
export const TWO_SITES: readonly SeedSite[] = [
  { name: 'Chajnantor', shortName: 'cha', locations: { 'primecam-raw': 'source', 'cha-buffer': 'buffer' } },
  {
    name: 'Cologne',
    shortName: 'col',
    locations: { 'col-buffer': 'buffer', 'col-lta': 'long_term_archive' },
  },
];

export interface SeededLocations {
  /** `${site}/${location}` → { id, root }. */
  readonly byName: ReadonlyMap<string, { id: number; root: string; type: string }>;
}

/** Creates the sites and locations, each location a directory under `root`. */
export async function seedSites(
  db: Kysely<Database>,
  root: string,
  sites: readonly SeedSite[] = TWO_SITES,
): Promise<SeededLocations> {
  const byName = new Map<string, { id: number; root: string; type: string }>();
  // Names and paths are checked before anything is written (NAME_MAX, PATH_MAX): a name too long
  // for a file cannot be a real one, and PostgreSQL would refuse it in a UNIQUE index anyway.
  for (const s of sites) {
    checkStoredName(s.name, 'site name');
    checkStoredName(s.shortName, 'site short name');
    for (const name of Object.keys(s.locations)) {
      checkStoredName(name, 'location name');
      checkStoredPath(join(root, s.shortName, name), 'location root path');
    }
  }
  for (const s of sites) {
    const site = await db
      .insertInto('sites')
      .values({ name: s.name, short_name: s.shortName })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const [name, type] of Object.entries(s.locations)) {
      const dir = join(root, s.shortName, name);
      await mkdir(dir, { recursive: true });
      const loc = await db
        .insertInto('data_locations')
        .values({ site_id: site.id, name, location_type: type, root_path: dir })
        .returning('id')
        .executeTakeFirstOrThrow();
      byName.set(`${s.shortName}/${name}`, { id: loc.id, root: dir, type });
    }
  }
  return { byName };
}

export interface SeedPackagesOptions {
  readonly packages: number;
  readonly filesPerPackage: number;
  /** Bytes per file: a random size in [min, max]. */
  readonly minFileBytes: number;
  readonly maxFileBytes: number;
  /** `${site}/${location}` of the source and its buffer. */
  readonly source: string;
  readonly buffer: string;
  /** Name prefix (packages are `${prefix}-0001`…). */
  readonly prefix?: string;
}

/** Writes the raw files and inserts pending raw_data_package operations; returns their ids. */
export async function seedRawPackages(
  db: Kysely<Database>,
  locations: SeededLocations,
  o: SeedPackagesOptions,
): Promise<string[]> {
  const source = locations.byName.get(o.source);
  const buffer = locations.byName.get(o.buffer);
  if (!source || !buffer) throw new Error(`unknown location ${!source ? o.source : o.buffer}`);
  const prefix = o.prefix ?? `obs-${new Date().toISOString().slice(0, 10)}`;
  // The longest names this will write, checked before any file or row is (NAME_MAX, PATH_MAX).
  const longest = `${prefix}-${String(Math.max(1, o.packages)).padStart(4, '0')}`;
  checkStoredName(longest, 'package name');
  checkStoredPath(`raw/${longest}.tar`, 'package path');
  checkStoredPath(
    join(source.root, longest, `scan-${String(Math.max(1, o.filesPerPackage)).padStart(3, '0')}.fits`),
    'raw file path',
  );
  const ids: string[] = [];
  for (let p = 0; p < o.packages; p++) {
    const name = `${prefix}-${String(p + 1).padStart(4, '0')}`;
    const files: { relative_path: string; size_bytes: number; sha256: string }[] = [];
    await mkdir(join(source.root, name), { recursive: true });
    for (let f = 0; f < o.filesPerPackage; f++) {
      const size = o.minFileBytes + Math.floor(Math.random() * (o.maxFileBytes - o.minFileBytes + 1));
      const bytes = randomBytes(size);
      const relative = `${name}/scan-${String(f + 1).padStart(3, '0')}.fits`;
      await writeFile(join(source.root, relative), bytes);
      files.push({
        relative_path: relative,
        size_bytes: size,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    }
    const id = await db.transaction().execute(async (trx) => {
      const pkg = await trx
        .insertInto('raw_data_packages')
        .values({
          name,
          source_location_id: source.id,
          buffer_location_id: buffer.id,
          relative_path: `raw/${name}.tar`,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      await trx
        .insertInto('raw_data_files')
        .values(files.map((f) => ({ ...f, source_location_id: source.id, raw_data_package_id: pkg.id })))
        .execute();
      return pkg.id;
    });
    ids.push(id);
  }
  return ids;
}
