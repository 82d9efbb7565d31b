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
import pg from 'pg';
import { registerRawFiles, type RawFileInput } from './ingest.js';
import { migrateToLatest } from './migrate.js';
import { OPERATION_TABLES, type OperationStatus, type OperationType } from './operation-types.js';
import { createDatabase, type CcatDatabase } from './pool.js';
import { checkStoredName, checkStoredPath } from './sanitize.js';
import type { Database, LocationType } from './schema.js';

/** The database tests use when TEST_DATABASE_URL and DATABASE_URL are unset: loopback `test`, user postgres. */
export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/**
 * The database tests use: TEST_DATABASE_URL, else DATABASE_URL, else {@link DEFAULT_TEST_DATABASE_URL}.
 * The one place this package reads the environment: test fixtures, never production code.
 */
export function testDatabaseUrl(): string {
  return process.env['TEST_DATABASE_URL'] ?? process.env['DATABASE_URL'] ?? DEFAULT_TEST_DATABASE_URL;
}

const START_PG = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';

/** One test file's own schema: a pool on it, migrated unless asked not to be. */
export interface TestDatabase extends AsyncDisposable {
  readonly database: CcatDatabase;
  readonly db: Kysely<Database>;
  /** `t_<label>_<pid>_<random>`: the `t_` prefix marks every test schema (a leftover is easy to find). */
  readonly schema: string;
  /** The connection string (the schema is chosen by the pool, not by the URL). */
  readonly url: string;
  /** Closes the pool, then drops the schema (and any `<schema>_*` the test made); safe to call twice. */
  close(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Default {@link testDatabaseUrl}. */
  readonly url?: string;
  /** Pool size, default 4. */
  readonly max?: number;
  /** Apply every migration (default true); false leaves the schema empty. */
  readonly migrate?: boolean;
  /** Server-side prepared statements for the pool (`createDatabase`'s option; default true there). */
  readonly preparedStatements?: boolean;
}

/** A test database with the two sites of `TWO_SITES` seeded ({@link seedLocations}). */
export interface SeededTestDatabase extends TestDatabase {
  readonly locations: TestLocations;
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (e) {
    await client.end().catch(() => undefined);
    throw new Error(
      `PostgreSQL is not reachable at ${url} (${(e as Error).message}). Start it with: ${START_PG}, or set TEST_DATABASE_URL.`,
      { cause: e },
    );
  }
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/**
 * The one test-database fixture: creates a schema of its own for one test file (see
 * {@link TestDatabase.schema}), opens a pool on it and migrates it; `close()` (or `await using`) drops
 * it. Use it from `beforeAll`/`afterAll`, so test files run in parallel without sharing rows. With
 * `locations`, the two sites are seeded too (the result's `locations`).
 *
 * @throws Error saying how to start PostgreSQL when it is unreachable; a migration's error (the pool
 *   closed and the schema dropped first).
 */
export async function createTestDatabase(
  label: string,
  options: TestDatabaseOptions & {
    /** Seed the two sites (`true`, or their root paths as {@link seedLocations} takes them). */
    readonly locations: true | Partial<Record<keyof TestLocations, string>>;
  },
): Promise<SeededTestDatabase>;
export async function createTestDatabase(label: string, options?: TestDatabaseOptions): Promise<TestDatabase>;
export async function createTestDatabase(
  label: string,
  options: TestDatabaseOptions & {
    readonly locations?: true | Partial<Record<keyof TestLocations, string>>;
  } = {},
): Promise<TestDatabase | SeededTestDatabase> {
  const url = options.url ?? testDatabaseUrl();
  const clean = label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .slice(0, 30);
  const schema = `t_${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
  await adminQuery(url, `CREATE SCHEMA ${schema}`);
  const database = createDatabase({
    connectionString: url,
    schema,
    max: options.max ?? 4,
    ...(options.preparedStatements !== undefined && { preparedStatements: options.preparedStatements }),
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const errors: unknown[] = [];
      await database.close().catch((e: unknown) => errors.push(e));
      // Schemas a test derived from its own (`<schema>_new`…) go too: nothing `t_*` is left behind.
      await adminQuery(
        url,
        `DO $$ DECLARE s text; BEGIN
           FOR s IN SELECT nspname FROM pg_namespace WHERE nspname = '${schema}' OR nspname LIKE '${schema}\\_%'
           LOOP EXECUTE format('DROP SCHEMA %I CASCADE', s); END LOOP; END $$`,
      ).catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw new AggregateError(errors, `closing test database ${schema} failed`);
    })());
  const t: TestDatabase = {
    database,
    db: database.db,
    schema,
    url,
    close,
    [Symbol.asyncDispose]: close,
  };
  try {
    if (options.migrate !== false) await migrateToLatest(database.db, { schema });
    if (options.locations === undefined) return t;
    const roots = options.locations === true ? {} : options.locations;
    return { ...t, locations: await seedLocations(database.db, roots) };
  } catch (e) {
    await close().catch(() => undefined);
    throw e;
  }
}

export interface SeedSite {
  readonly name: string;
  readonly shortName: string;
  /** Location name → type. */
  readonly locations: Readonly<Record<string, LocationType>>;
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
  /** Sets claimed_by, and started_at to the last sign of life (now when lastSeenAgoS is not given). */
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
  // A claim's time (started_at) is its first sign of life.
  if (s.claimedBy !== undefined)
    sets.push(
      sql`${c('claimed_by')} = ${s.claimedBy}`,
      sql`${c('started_at')} = now() - make_interval(secs => ${s.lastSeenAgoS ?? 0})`,
    );
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
