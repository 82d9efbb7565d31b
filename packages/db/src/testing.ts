// @ccat/db/testing: fixtures for tests of this package and of services built on it. A deliberate
// subpath: production code imports from '@ccat/db' only.
import { randomBytes } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import { migrateToLatest } from './migrate.js';
import { OPERATION_TABLES, type OperationStatus, type OperationType } from './operation-types.js';
import { createDatabase, type CcatDatabase } from './pool.js';
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

/** Location ids of the two-site fixture: Chajnantor (source, buffer) and Cologne (buffer, archive). */
export interface TestLocations {
  readonly source: number;
  readonly buffer: number;
  readonly remoteBuffer: number;
  readonly archive: number;
}

/** Inserts the two sites and four locations; `roots` sets their directories (default /tmp/ccat/<name>). */
export async function seedLocations(
  db: Kysely<Database>,
  roots: Partial<Record<keyof TestLocations, string>> = {},
): Promise<TestLocations> {
  const sites = await db
    .insertInto('sites')
    .values([
      { name: 'Chajnantor', short_name: 'cha' },
      { name: 'Cologne', short_name: 'col' },
    ])
    .returning('id')
    .execute();
  const [cha, col] = [sites[0]!.id, sites[1]!.id];
  const loc = async (
    key: keyof TestLocations,
    site_id: number,
    name: string,
    location_type: 'source' | 'buffer' | 'long_term_archive',
  ) =>
    (
      await db
        .insertInto('data_locations')
        .values({ site_id, name, location_type, root_path: roots[key] ?? `/tmp/ccat/${name}` })
        .returning('id')
        .executeTakeFirstOrThrow()
    ).id;
  return {
    source: await loc('source', cha, 'primecam-source', 'source'),
    buffer: await loc('buffer', cha, 'cha-buffer', 'buffer'),
    remoteBuffer: await loc('remoteBuffer', col, 'col-buffer', 'buffer'),
    archive: await loc('archive', col, 'col-lta', 'long_term_archive'),
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
