// The database text boundary against the adversary (issue 12, second round): the JSON-escape rule
// applies to JSON documents only, so legal names with a backslash and `u0000`/`ud800` are stored
// exactly as given; over-long names are refused with a ValidationError before the insert, not by
// PostgreSQL's index (54000). Real PostgreSQL, own schema.
import { randomBytes } from 'node:crypto';
import { ValidationError } from '@ccat/errors';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkStoredName,
  checkStoredPath,
  NAME_MAX_BYTES,
  PATH_MAX_BYTES,
  storableParameter,
  storedJson,
} from '../src/index.js';
import { createTestDatabase, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_text_boundary', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

async function newPackage(name: string): Promise<string> {
  const row = await t.db
    .insertInto('raw_data_packages')
    .values({
      name,
      source_location_id: t.locations.source,
      buffer_location_id: t.locations.buffer,
      relative_path: `raw/${name}.tar`,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

describe('plain text is stored exactly as given (finding 8)', () => {
  it('a file name with a literal backslash-u escape round-trips', async () => {
    const pkg = await newPackage('pkg-bs');
    const names = [
      String.raw`pkg-bs/scan\ud800.fits`,
      String.raw`pkg-bs/a\u0000b.fits`,
      String.raw`pkg-bs/c\\ud800.fits`,
    ];
    for (const relative_path of names)
      await t.db
        .insertInto('raw_data_files')
        .values({
          relative_path,
          size_bytes: 1,
          sha256: '0'.repeat(64),
          source_location_id: t.locations.source,
          raw_data_package_id: pkg,
        })
        .execute();
    const back = await t.db
      .selectFrom('raw_data_files')
      .select('relative_path')
      .where('raw_data_package_id', '=', pkg)
      .orderBy('id')
      .execute();
    expect(back.map((r) => r.relative_path)).toEqual(names);
  });

  it('two distinct legal names do not collapse into one and collide on UNIQUE', async () => {
    const pkg = await newPackage('pkg-bs2');
    const names = ['d800', 'dbff'].map((x) => `pkg-bs2/scan\\u${x}.fits`);
    await t.db
      .insertInto('raw_data_files')
      .values(
        names.map((relative_path) => ({
          relative_path,
          size_bytes: 1,
          sha256: '0'.repeat(64),
          source_location_id: t.locations.source,
          raw_data_package_id: pkg,
        })),
      )
      .execute();
    const back = await t.db
      .selectFrom('raw_data_files')
      .select('relative_path')
      .where('raw_data_package_id', '=', pkg)
      .orderBy('relative_path')
      .execute();
    expect(back.map((r) => r.relative_path)).toEqual(names);
  });

  it('JSON documents still get the escape rule, read token by token', async () => {
    // What a writer binds to a jsonb column as text (recovery-handlers' apply does).
    const doc = JSON.stringify({ nul: 'a\u0000b', lone: '\ud800', literal: String.raw`x\u0000` });
    const param = storableParameter(doc) as string;
    const row = await sql<{ c: Record<string, string> }>`SELECT ${param}::jsonb AS c`.execute(t.db);
    expect(row.rows[0]!.c).toEqual({ nul: 'a\ufffdb', lone: '\ufffd', literal: String.raw`x\u0000` });
    const stored = await sql<{
      c: Record<string, string>;
    }>`SELECT ${storedJson({ k: String.raw`a\u0000` })}::jsonb AS c`.execute(t.db);
    expect(stored.rows[0]!.c).toEqual({ k: String.raw`a\u0000` });
  });
});

describe('identifiers are bounded where they enter (finding 9)', () => {
  it('a name over NAME_MAX is a ValidationError before the insert', () => {
    const long = 'n'.repeat(3000);
    expect(() => checkStoredName(long, 'package name')).toThrow(ValidationError);
    expect(() => checkStoredName(long, 'package name')).toThrow(/3000 bytes long.*at most 255/);
    expect(() => checkStoredName('é'.repeat(200), 'package name')).toThrow(/400 bytes/);
    expect(checkStoredName('x'.repeat(NAME_MAX_BYTES), 'package name')).toHaveLength(NAME_MAX_BYTES);
    expect(() => checkStoredName('', 'package name')).toThrow(ValidationError);
    expect(() => checkStoredName('a\u0000b', 'package name')).toThrow(/NUL/);
  });

  it('a path over PATH_MAX, or with a segment over NAME_MAX, is refused', () => {
    expect(() => checkStoredPath(`raw/${'s'.repeat(256)}.fits`, 'relative path')).toThrow(
      /segment of 261 bytes/,
    );
    expect(() =>
      checkStoredPath(Array.from({ length: 20 }, () => 'd'.repeat(250)).join('/'), 'relative path'),
    ).toThrow(/at most 4095/);
    const deep = Array.from({ length: 16 }, () => 'd'.repeat(250)).join('/');
    expect(checkStoredPath(deep, 'relative path').length).toBeLessThanOrEqual(PATH_MAX_BYTES);
  });

  it('what the check refuses is what PostgreSQL would fail on, after the work (54000)', async () => {
    // Random text: a repetitive name would be compressed below the index limit.
    const name = randomBytes(2250).toString('base64');
    expect(() => checkStoredName(name, 'package name')).toThrow(ValidationError);
    await expect(newPackage(name)).rejects.toMatchObject({ code: '54000' });
  });
});
