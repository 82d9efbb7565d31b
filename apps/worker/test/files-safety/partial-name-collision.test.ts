// Adversary finding 1: a package whose name looked like another package's partial
// (`<name>.ccat-partial-<n>`) was removed by that other package's cleanup: a deletion that was
// REFUSED (its package not archived yet) still ran the failure cleanup, which removed
// `<source>/<A>.ccat-partial-0`, the raw files of package B, never archived. Now a deletion has no
// outputs to clean (a refusal touches nothing), and containedPath refuses the reserved marker, so no
// database value names a partial (B's own operations fail validation).
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect } from 'vitest';
import { workerTest as it } from '../harness.js';
import { runCopy, tree } from './common.js';

describe('partial-name collision', () => {
  it("a refused deletion of package A leaves package B's never-archived raw files named A.ccat-partial-0 alone", async ({
    harness,
  }) => {
    const h = await harness('adv_collide');
    const db = h.database.db;
    const [aId] = await h.seed(1, 2);
    const a = await db
      .selectFrom('raw_data_packages')
      .select(['name', 'source_location_id', 'buffer_location_id'])
      .where('id', '=', aId!)
      .executeTakeFirstOrThrow();
    const source = h.locations.byName.get('cha/primecam-raw')!.root;
    // Package B: a legal, unique name that happens to be A's partial name.
    const bName = `${a.name}.ccat-partial-0`;
    const bytes = randomBytes(1000);
    await mkdir(join(source, bName), { recursive: true });
    await writeFile(join(source, bName, 'scan-001.fits'), bytes);
    const b = await db
      .insertInto('raw_data_packages')
      .values({
        name: bName,
        source_location_id: a.source_location_id,
        buffer_location_id: a.buffer_location_id,
        relative_path: `raw/${bName}.tar`,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    await db
      .insertInto('raw_data_files')
      .values({
        raw_data_package_id: b.id,
        source_location_id: a.source_location_id,
        relative_path: `${bName}/scan-001.fits`,
        size_bytes: 1000,
        sha256: createHash('sha256').update(bytes).digest('hex'),
      })
      .execute();
    const before = await tree(join(source, bName));
    expect(before.size).toBe(1);
    // A deletion of A's raw files, before anything is archived: it must be refused and touch nothing.
    const { row } = await runCopy(h, {
      raw_data_package_id: aId!,
      location_id: a.source_location_id,
      relative_path: a.name,
      copy_kind: 'raw_files',
    });
    expect(row).toMatchObject({ status: 'failed', lastErrorCode: 'DELETION_NOT_SAFE' });
    // What should hold: B's raw files (never archived) are untouched.
    expect(await tree(join(source, bName)), "package B's raw files").toEqual(before);
  });
});
