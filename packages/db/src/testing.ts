// Over 300 lines: the subpath's one module (only src/index.ts and entry points may export); the one seeder and the row fixtures.
// @ccat/db/testing: fixtures for tests of this package and of services built on it, the demo and
// the benchmarks. A deliberate subpath: production code imports from '@ccat/db' only. The one
// seeder: the CCAT sites and locations (`TWO_SITES`), and a synthetic night of observations (raw
// files of random bytes at the source, their sha256 in raw_data_files, pending raw_data_package
// operations).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql, type Kysely } from 'kysely';
import { registerRawFiles, type RawFileInput } from './ingest.js';
import { migrateToLatest } from './migrate.js';
import { OPERATION_TABLES, type OperationStatus, type OperationType } from './operation-types.js';
import { createDatabase, type CcatDatabase } from './pool.js';
import { checkStoredName, checkStoredPath } from './sanitize.js';
import type { Database } from './schema.js';

/** A pool on `schema` (created if missing) with every migration applied. */
export async function migratedDatabase(options: {
  url: string;
  schema: string;
  max?: number;
}): Promise<CcatDatabase> {
  const database = createDatabase({
    connectionString: options.url,
    schema: options.schema,
    max: options.max ?? 4,
  });
  try {
    await migrateToLatest(database.db, { schema: options.schema });
  } catch (e) {
    await database.close();
    throw e;
  }
  return database;
}

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

/** Creates the sites and locations, each location a directory `root/<site>/<location>` (created). */
export async function seedSites(
  db: Kysely<Database>,
  root: string,
  sites: readonly SeedSite[] = TWO_SITES,
): Promise<SeededLocations> {
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
  for (const s of sites)
    for (const name of Object.keys(s.locations))
      await mkdir(join(root, s.shortName, name), { recursive: true });
  return insertSites(db, sites, (site, name) => join(root, site, name));
}

/** Inserts the sites and their locations, `rootOf(siteShortName, locationName)` the root path of each. */
export async function insertSites(
  db: Kysely<Database>,
  sites: readonly SeedSite[],
  rootOf: (site: string, location: string) => string,
): Promise<SeededLocations> {
  const byName = new Map<string, { id: number; root: string; type: string }>();
  for (const s of sites) {
    const site = await db
      .insertInto('sites')
      .values({ name: s.name, short_name: s.shortName })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const [name, type] of Object.entries(s.locations)) {
      const dir = rootOf(s.shortName, name);
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
    const files: RawFileInput[] = [];
    await mkdir(join(source.root, name), { recursive: true });
    for (let f = 0; f < o.filesPerPackage; f++) {
      const size = o.minFileBytes + Math.floor(Math.random() * (o.maxFileBytes - o.minFileBytes + 1));
      const bytes = randomBytes(size);
      const relative = `${name}/scan-${String(f + 1).padStart(3, '0')}.fits`;
      await writeFile(join(source.root, relative), bytes);
      files.push({
        relativePath: relative,
        sizeBytes: size,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      });
    }
    const registered = await registerRawFiles(
      db,
      { sourceLocationId: source.id, bufferLocationId: buffer.id },
      [{ name, files }],
    );
    const id = registered.packages[0]!.id;
    ids.push(id);
  }
  return ids;
}

/** Location ids of the two-site fixture: Chajnantor (source, buffer) and Cologne (buffer, archive). */
export interface TestLocations {
  readonly source: number;
  readonly buffer: number;
  readonly remoteBuffer: number;
  readonly archive: number;
}

/**
 * The two sites of `TWO_SITES` (the one seeder, ./seed.ts) without directories; `roots` sets their
 * root paths (default /tmp/ccat/<name>). Returns the location ids by role.
 */
export async function seedLocations(
  db: Kysely<Database>,
  roots: Partial<Record<keyof TestLocations, string>> = {},
): Promise<TestLocations> {
  const role = {
    'primecam-raw': 'source',
    'cha-buffer': 'buffer',
    'col-buffer': 'remoteBuffer',
    'col-lta': 'archive',
  } as const;
  const { byName } = await insertSites(
    db,
    TWO_SITES,
    (_site, name) => roots[role[name as keyof typeof role]] ?? `/tmp/ccat/${name}`,
  );
  const id = (name: string) => byName.get(name)!.id;
  return {
    source: id('cha/primecam-raw'),
    buffer: id('cha/cha-buffer'),
    remoteBuffer: id('col/col-buffer'),
    archive: id('col/col-lta'),
  };
}

/** A row state to force in tests. Times are relative to the database clock, in seconds. */
export interface SeedState {
  readonly status?: OperationStatus;
  readonly attempt?: number;
  readonly retryCount?: number;
  readonly maxRetries?: number | null;
  /** Seconds from now (negative: in the past). Default -1 (due). */
  readonly nextAttemptInS?: number;
  readonly lastSeenAgoS?: number;
  readonly scheduledAgoS?: number;
  readonly claimedBy?: string;
}

const uniqueName = () => `pkg-${randomBytes(6).toString('hex')}`;

/** Inserts one operation of `type` (and the rows it needs) in the given state; returns its id. */
export async function seedOperation(
  db: Kysely<Database>,
  locs: TestLocations,
  type: OperationType,
  state: SeedState = {},
): Promise<string> {
  const rdp = async () => {
    const name = uniqueName();
    return db
      .insertInto('raw_data_packages')
      .values({
        name,
        source_location_id: locs.source,
        buffer_location_id: locs.buffer,
        relative_path: `raw/${name}.tar`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
  };
  const dtp = async () => {
    const name = uniqueName();
    return db
      .insertInto('data_transfer_packages')
      .values({ name, buffer_location_id: locs.buffer, relative_path: `transfer/${name}.tar` })
      .returning('id')
      .executeTakeFirstOrThrow();
  };
  const transfer = async (completed: boolean) =>
    db
      .insertInto('data_transfers')
      .values({
        data_transfer_package_id: (await dtp()).id,
        origin_location_id: locs.buffer,
        destination_location_id: locs.remoteBuffer,
        ...(completed && { status: 'completed' as const, unpack_status: 'pending' as const }),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
  let id: string;
  switch (type) {
    case 'raw_data_package':
      id = (await rdp()).id;
      break;
    case 'data_transfer_package':
      id = (await dtp()).id;
      break;
    case 'data_transfer':
      id = (await transfer(false)).id;
      break;
    case 'unpack':
      id = (await transfer(true)).id;
      break;
    case 'long_term_archive_transfer': {
      const name = uniqueName();
      id = (
        await db
          .insertInto('long_term_archive_transfers')
          .values({
            raw_data_package_id: (await rdp()).id,
            origin_location_id: locs.remoteBuffer,
            destination_location_id: locs.archive,
            relative_path: `archive/${name}.tar`,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
      break;
    }
    case 'deletion':
      id = (
        await db
          .insertInto('physical_copies')
          .values({
            raw_data_package_id: (await rdp()).id,
            location_id: locs.source,
            relative_path: uniqueName(),
            copy_kind: 'raw_files',
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
      break;
  }
  await setOperationState(db, type, id, state);
  return id;
}

/** Forces a row's state columns (test setup only; production code uses the transitions). */
export async function setOperationState(
  db: Kysely<Database>,
  type: OperationType,
  id: string,
  s: SeedState,
): Promise<void> {
  const p = OPERATION_TABLES[type].prefix;
  const c = (n: string) => sql.ref(`${p}${n}`);
  const sets = [
    sql`${c('status')} = ${s.status ?? 'pending'}`,
    sql`${c('attempt')} = ${s.attempt ?? 0}`,
    sql`${c('retry_count')} = ${s.retryCount ?? 0}`,
    sql`${c('max_retries')} = ${s.maxRetries ?? null}`,
    sql`${c('next_attempt_at')} = now() + make_interval(secs => ${s.nextAttemptInS ?? -1})`,
  ];
  if (s.lastSeenAgoS !== undefined)
    sets.push(sql`${c('last_seen_at')} = now() - make_interval(secs => ${s.lastSeenAgoS})`);
  if (s.scheduledAgoS !== undefined)
    sets.push(sql`${c('scheduled_at')} = now() - make_interval(secs => ${s.scheduledAgoS})`);
  if (s.claimedBy !== undefined) sets.push(sql`${c('claimed_by')} = ${s.claimedBy}`);
  await sql`UPDATE ${sql.table(OPERATION_TABLES[type].table)} SET ${sql.join(sets)} WHERE id = ${id}`.execute(
    db,
  );
}

/** Rows in operation_events and notifications, to show that a refused transition wrote nothing. */
export async function sideCounts(db: Kysely<Database>): Promise<{ events: number; notifications: number }> {
  const { rows } = await sql<{ events: number; notifications: number }>`
    SELECT (SELECT count(*)::int FROM operation_events) AS events, (SELECT count(*)::int FROM notifications) AS notifications`.execute(
    db,
  );
  return rows[0]!;
}
