// Adversary finding 3: a raw_files deletion removed the whole package directory, but it only checked
// the raw_data_files rows of the same location id. Files in that directory that belong to another
// package registered at another location row with the same root, or that no row knows about (written
// after packaging), were never archived and were deleted with it; the row ended `completed`. Now the
// deletion looks at what is on disk: anything but its package's registered files is refused
// (DELETION_NOT_SAFE, nothing touched), and it removes file by file, directories only when empty.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { workerTest as it } from '../harness.js';
import { tree } from './common.js';

describe('adversary: raw files deletion', () => {
  it("refuses, touching nothing, when another package's never-archived raw files registered at a second location with the same root are in the directory", async ({
    harness,
  }) => {
    const h = await harness('adv_sameroot');
    const db = h.database.db;
    const [aId] = await h.seed(1, 2);
    const a = await db
      .selectFrom('raw_data_packages')
      .select(['name', 'source_location_id', 'buffer_location_id'])
      .where('id', '=', aId!)
      .executeTakeFirstOrThrow();
    const src = h.locations.byName.get('cha/primecam-raw')!;
    const site = await db
      .selectFrom('data_locations')
      .select('site_id')
      .where('id', '=', src.id)
      .executeTakeFirstOrThrow();
    // A second source location row on the same directory (e.g. a second instrument's config).
    const l2 = await db
      .insertInto('data_locations')
      .values({ site_id: site.site_id, name: 'second-raw', location_type: 'source', root_path: src.root })
      .returning('id')
      .executeTakeFirstOrThrow();
    const bytes = randomBytes(500);
    await mkdir(join(src.root, a.name), { recursive: true });
    await writeFile(join(src.root, a.name, 'other-instrument.fits'), bytes);
    const b = await db
      .insertInto('raw_data_packages')
      .values({
        name: 'other-instrument-0001',
        source_location_id: l2.id,
        buffer_location_id: a.buffer_location_id,
        relative_path: 'raw/other-instrument-0001.tar',
        // Its packaging failed and waits for an operator: it is never archived here.
        status: 'failed',
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('raw_data_files')
      .values({
        raw_data_package_id: b.id,
        source_location_id: l2.id,
        relative_path: `${a.name}/other-instrument.fits`,
        size_bytes: 500,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      })
      .execute();
    await h.runUntilQuiet();
    const del = await db
      .selectFrom('physical_copies')
      .select(['status', 'relative_path', 'last_error_code', 'last_error_message'])
      .where('copy_kind', '=', 'raw_files')
      .executeTakeFirstOrThrow();
    // What should hold: the deletion is refused, and B's file (never archived) is still there.
    expect({ deletion: del.status, code: del.last_error_code }).toEqual({
      deletion: 'failed',
      code: 'DELETION_NOT_SAFE',
    });
    expect(del.last_error_message).toMatch(/other-instrument\.fits is not a registered raw file/);
    expect([...(await tree(join(src.root, a.name))).keys()]).toContain('other-instrument.fits');
  });

  it('refuses, touching nothing, when the package directory holds a file no row knows about (written after packaging)', async ({
    harness,
  }) => {
    const h = await harness('adv_unknownfile');
    const [aId] = await h.seed(1, 2);
    const a = await h.database.db
      .selectFrom('raw_data_packages')
      .select('name')
      .where('id', '=', aId!)
      .executeTakeFirstOrThrow();
    const src = h.locations.byName.get('cha/primecam-raw')!;
    let planted = false;
    await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type === 'deletion' && !planted) {
          planted = true;
          await writeFile(join(src.root, a.name, 'late-scan.fits'), 'never packaged');
        }
        return undefined;
      },
    });
    expect(planted).toBe(true);
    const del = await h.database.db
      .selectFrom('physical_copies')
      .select(['status', 'last_error_code'])
      .where('copy_kind', '=', 'raw_files')
      .executeTakeFirstOrThrow();
    expect({ deletion: del.status, code: del.last_error_code }).toEqual({
      deletion: 'failed',
      code: 'DELETION_NOT_SAFE',
    });
    expect(
      [...(await tree(join(src.root, a.name))).keys()],
      'the unregistered, never-archived file',
    ).toContain('late-scan.fits');
  });
});
