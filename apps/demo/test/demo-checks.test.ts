// The demo's and the soak's checks must be able to fail: each is shown catching what it guards.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CcatDatabase } from '@ccat/db';
import {
  createTestDatabase,
  seedLocations,
  seedOperation,
  type TestDatabase,
  type TestLocations,
} from '@ccat/db/testing';
import { sql } from 'kysely';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkCompletedOnce, checkFailuresNotified, checkIntegrity } from '../src/integrity.js';

let schema: TestDatabase;
let database: CcatDatabase;
let root: string;
let locs: TestLocations;
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  schema = await createTestDatabase('demo_checks');
  database = schema.database;
  root = await mkdtemp(join(tmpdir(), 'ccat-checks-'));
  locs = await seedLocations(database.db, {
    source: join(root, 'src'),
    buffer: join(root, 'buf'),
    remoteBuffer: join(root, 'rbuf'),
    archive: join(root, 'lta'),
  });
});
afterAll(async () => {
  await schema?.close();
  await rm(root, { recursive: true, force: true });
});

/** An archived package: raw files recorded with their checksums, a tar in the archive, verified. */
async function archivedPackage(
  name: string,
  contents: Record<string, string>,
  tamper?: (dir: string) => Promise<void>,
) {
  const db = database.db;
  const staging = join(root, 'staging', name);
  for (const [f, c] of Object.entries(contents)) {
    await mkdir(join(staging, name), { recursive: true });
    await writeFile(join(staging, name, f), c);
  }
  await tamper?.(staging);
  await mkdir(join(root, 'lta', 'archive'), { recursive: true });
  const archive = join(root, 'lta', 'archive', `${name}.tar`);
  await tar.create({ file: archive, cwd: staging, portable: true }, [name]);
  const { readFile } = await import('node:fs/promises');
  const pkg = await db
    .insertInto('raw_data_packages')
    .values({
      name,
      source_location_id: locs.source,
      buffer_location_id: locs.buffer,
      relative_path: `raw/${name}.tar`,
      status: 'completed',
      sha256: sha(await readFile(archive)),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  await db
    .insertInto('raw_data_files')
    .values(
      Object.entries(contents).map(([f, c]) => ({
        source_location_id: locs.source,
        raw_data_package_id: pkg.id,
        relative_path: `${name}/${f}`,
        size_bytes: c.length,
        sha256: sha(c),
      })),
    )
    .execute();
  await db
    .insertInto('long_term_archive_transfers')
    .values({
      raw_data_package_id: pkg.id,
      origin_location_id: locs.remoteBuffer,
      destination_location_id: locs.archive,
      relative_path: `archive/${name}.tar`,
      status: 'completed',
      verified_at: new Date(),
    })
    .execute();
  return pkg.id;
}

describe('the soak checks', () => {
  it('integrity holds for a faithful archive and catches a changed, a missing and an extra file', async () => {
    await archivedPackage('good', { 'a.fits': 'aaa', 'b.fits': 'bbb' });
    expect((await checkIntegrity(database.db)).problems).toEqual([]);
    await archivedPackage('changed', { 'a.fits': 'aaa' }, (d) =>
      writeFile(join(d, 'changed', 'a.fits'), 'AAA'),
    );
    await archivedPackage('extra', { 'a.fits': 'aaa' }, (d) => writeFile(join(d, 'extra', 'x.fits'), 'x'));
    const r = await checkIntegrity(database.db);
    expect(r.problems).toEqual(
      expect.arrayContaining([
        'archived changed/a.fits differs from its source',
        'archive of extra holds an unexpected extra/x.fits',
      ]),
    );
  });

  it('catches raw files lost without an archive, and deletions without a verified archive', async () => {
    const id = await seedOperation(database.db, locs, 'raw_data_package', { status: 'failed' });
    await database.db
      .insertInto('raw_data_files')
      .values({
        source_location_id: locs.source,
        raw_data_package_id: id,
        relative_path: 'lost/x.fits',
        size_bytes: 1,
        sha256: sha('x'),
      })
      .execute();
    await seedOperation(database.db, locs, 'deletion', { status: 'completed' });
    const r = await checkIntegrity(database.db);
    expect(r.problems).toContain('lost/x.fits is not archived and is gone from its source');
    expect(r.problems.some((p) => /^deletion \d+ completed without a verified archive$/.test(p))).toBe(true);
  });

  it('catches an operation completed twice', async () => {
    expect((await checkCompletedOnce(database.db)).problems).toEqual([]);
    await sql`INSERT INTO operation_events (operation_type, operation_id, attempt, event) VALUES ('unpack', 7, 0, 'completed'), ('unpack', 7, 1, 'completed')`.execute(
      database.db,
    );
    expect((await checkCompletedOnce(database.db)).problems).toEqual(['unpack 7 completed 2 times']);
  });

  it('needs every failed operation to have its ERROR notification delivered, alone or in a sent digest', async () => {
    const db = database.db;
    const failed = await seedOperation(db, locs, 'data_transfer', { status: 'failed' });
    const ids = (await checkFailuresNotified(db)).problems;
    expect(ids).toContain(`failed data_transfer ${failed} has no delivered ERROR notification`);
    const note = (status: string, digest?: string) =>
      db
        .insertInto('notifications')
        .values({
          level: 'ERROR',
          event_kind: 'permanent_failure',
          subject: 's',
          body: 'b',
          operation_type: 'data_transfer',
          operation_id: failed,
          status: status as 'pending',
          ...(digest && { digest_id: digest }),
        })
        .returning('id')
        .executeTakeFirstOrThrow();
    await note('pending');
    expect((await checkFailuresNotified(db)).problems).toContain(
      `failed data_transfer ${failed} has no delivered ERROR notification`,
    );
    const digest = await db
      .insertInto('notifications')
      .values({
        level: 'ERROR',
        event_kind: 'permanent_failure',
        subject: 'digest',
        body: 'b',
        status: 'pending',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await note('digested', digest.id);
    expect(
      (await checkFailuresNotified(db)).problems.filter((p) => p.includes(`data_transfer ${failed} `)),
    ).toHaveLength(1);
    await db.updateTable('notifications').set({ status: 'sent' }).where('id', '=', digest.id).execute();
    expect(
      (await checkFailuresNotified(db)).problems.filter((p) => p.includes(`data_transfer ${failed} `)),
    ).toEqual([]);
  });
});
