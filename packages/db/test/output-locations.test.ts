import { ValidationError } from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { locationRoot, OPERATION_TYPES, readOutputLocations } from '../src/index.js';
import { createTestDatabase, seedOperation, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_output_locations', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

describe('output locations: stored facts, no paths built', () => {
  it('locationRoot reads a root, and refuses a location that does not exist', async () => {
    const row = await t.db.selectFrom('data_locations').select(['id', 'root_path']).executeTakeFirstOrThrow();
    expect(await locationRoot(t.db, row.id)).toBe(row.root_path);
    await expect(locationRoot(t.db, 2_000_000_000)).rejects.toThrow(ValidationError);
  });

  it.each(OPERATION_TYPES.map((type) => [type]))('%s: one output, or none for a deletion', async (type) => {
    const id = await seedOperation(t.db, t.locations, type, { status: 'in_progress' });
    const outputs = await readOutputLocations(t.db, type, id);
    if (type === 'deletion') return expect(outputs).toEqual([]);
    expect(outputs).toHaveLength(1);
    const out = outputs[0]!;
    expect(out.kind).toBe(type === 'unpack' ? 'unpacked-package' : 'file');
    const roots = await t.db.selectFrom('data_locations').select('root_path').execute();
    expect(roots.map((r) => r.root_path)).toContain(out.root);
  });

  it('an operation that does not exist has no outputs', async () => {
    expect(await readOutputLocations(t.db, 'data_transfer', '999999')).toEqual([]);
  });
});
