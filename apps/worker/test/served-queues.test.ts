// servedQueues against a real seeded schema: a data location row whose name cannot be part of a
// BullMQ queue name (written by hand in SQL) is skipped with one report naming it, and the worker
// still gets every other location's queues (before, BullMQ's "Queue name cannot contain :" stopped
// every worker at start).
import { createTestDatabase, type SeededTestDatabase } from '@ccat/db/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { servedQueues, type SkippedLocation } from '../src/queues.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('served_queues', { locations: true });
});
afterAll(() => t?.close());

describe('servedQueues', () => {
  it('skips a location whose name breaks queue names, once, and serves the rest', async () => {
    const before = await servedQueues(t.db, 'all');
    const site = await t.db
      .selectFrom('data_locations')
      .select('site_id')
      .where('id', '=', t.locations.buffer)
      .executeTakeFirstOrThrow();
    await t.db
      .insertInto('data_locations')
      .values({ site_id: site.site_id, name: 'bad:name', location_type: 'buffer', root_path: '/tmp/bad' })
      .execute();
    const skipped: SkippedLocation[] = [];
    const after = await servedQueues(t.db, 'all', (s) => skipped.push(s));
    expect(after).toEqual(before);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ location: 'bad:name' });
    expect(skipped[0]!.reason).toContain('"bad:name" cannot be part of a queue name');
    expect(after.filter((q) => q.name.includes(':'))).toEqual([]);
  });
});
