import { randomBytes } from 'node:crypto';
import { createTestSchema } from '@ccat/test-support';
import { sql, type Kysely } from 'kysely';
import {
  createDatabase,
  migrateToLatest,
  OPERATION_TABLES,
  type CcatDatabase,
  type Database,
  type OperationStatus,
  type OperationType,
} from '../src/index.js';

export interface TestDb {
  readonly database: CcatDatabase;
  readonly db: Kysely<Database>;
  readonly schema: string;
  readonly url: string;
  readonly locations: Locations;
  teardown(): Promise<void>;
}

export interface Locations {
  source: number;
  buffer: number;
  remoteBuffer: number;
  archive: number;
}

/** An isolated, migrated schema with two sites and their locations. */
export async function setupDb(label: string, max = 4): Promise<TestDb> {
  const t = await createTestSchema(label);
  const database = createDatabase({ connectionString: t.url, schema: t.schema, max });
  await migrateToLatest(database.db, { schema: t.schema });
  const locations = await seedLocations(database.db);
  return {
    database,
    db: database.db,
    schema: t.schema,
    url: t.url,
    locations,
    async teardown() {
      await database.close();
      await t.drop();
    },
  };
}

export async function seedLocations(db: Kysely<Database>): Promise<Locations> {
  const [cha, col] = await db
    .insertInto('sites')
    .values([
      { name: 'Chajnantor', short_name: 'cha' },
      { name: 'Cologne', short_name: 'col' },
    ])
    .returning('id')
    .execute();
  const loc = (site_id: number, name: string, location_type: 'source' | 'buffer' | 'long_term_archive') =>
    db
      .insertInto('data_locations')
      .values({ site_id, name, location_type, root_path: `/tmp/ccat/${name}` })
      .returning('id')
      .executeTakeFirstOrThrow();
  return {
    source: (await loc(cha!.id, 'primecam-source', 'source')).id,
    buffer: (await loc(cha!.id, 'cha-buffer', 'buffer')).id,
    remoteBuffer: (await loc(col!.id, 'col-buffer', 'buffer')).id,
    archive: (await loc(col!.id, 'col-lta', 'long_term_archive')).id,
  };
}

const name = () => `pkg-${randomBytes(6).toString('hex')}`;

export interface SeedState {
  status?: OperationStatus;
  attempt?: number;
  retryCount?: number;
  maxRetries?: number | null;
  /** Seconds from now (negative: in the past). */
  nextAttemptInS?: number;
  lastSeenAgoS?: number;
  scheduledAgoS?: number;
}

/** Inserts one operation of `type` (and what it needs) in the given state; returns its id. */
export async function seedOperation(
  db: Kysely<Database>,
  locs: Locations,
  type: OperationType,
  state: SeedState = {},
): Promise<string> {
  const rdp = () =>
    db
      .insertInto('raw_data_packages')
      .values({
        name: name(),
        source_location_id: locs.source,
        buffer_location_id: locs.buffer,
        relative_path: `${name()}.tar`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
  const dtp = () =>
    db
      .insertInto('data_transfer_packages')
      .values({ name: name(), buffer_location_id: locs.buffer, relative_path: `${name()}.tar` })
      .returning('id')
      .executeTakeFirstOrThrow();
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
    case 'long_term_archive_transfer':
      id = (
        await db
          .insertInto('long_term_archive_transfers')
          .values({
            raw_data_package_id: (await rdp()).id,
            origin_location_id: locs.remoteBuffer,
            destination_location_id: locs.archive,
            relative_path: `${name()}.tar`,
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
      break;
    case 'deletion':
      id = (
        await db
          .insertInto('physical_copies')
          .values({
            raw_data_package_id: (await rdp()).id,
            location_id: locs.source,
            relative_path: name(),
            copy_kind: 'raw_files',
          })
          .returning('id')
          .executeTakeFirstOrThrow()
      ).id;
      break;
  }
  await setState(db, type, id, state);
  return id;
}

/** Forces a row's state columns (test setup only; production code uses the transitions). */
export async function setState(
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
  await sql`UPDATE ${sql.table(OPERATION_TABLES[type].table)} SET ${sql.join(sets)} WHERE id = ${id}`.execute(
    db,
  );
}

/** Rows in the side tables, to show a refused transition wrote nothing. */
export async function sideCounts(db: Kysely<Database>): Promise<{ events: number; notifications: number }> {
  const e = await db
    .selectFrom('operation_events')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  const n = await db
    .selectFrom('notifications')
    .select((eb) => eb.fn.countAll<string>().as('n'))
    .executeTakeFirstOrThrow();
  return { events: Number(e.n), notifications: Number(n.n) };
}
