import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claim,
  createDatabase,
  readOperation,
  recoverStalled,
  complete,
  updateProgress,
  resetForRetry,
  markFailed,
  type CcatDatabase,
} from '../src/index.js';
import { createTestDatabase, seedOperation, sideCounts, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
let other: CcatDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_race', { locations: true });
  // A second pool: the two claimers never share a connection.
  other = createDatabase({ connectionString: t.url, schema: t.schema, max: 2 });
});
afterAll(async () => {
  await other?.close();
  await t?.close();
});

describe('two claimers racing for the same row', () => {
  it('exactly one wins, 1 000 times over', async () => {
    const ROUNDS = 1000;
    const { rows } = await sql<{ id: string }>`
      INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status)
      SELECT 'race-' || g, ${t.locations.source}, ${t.locations.buffer}, 'x.tar', 'scheduled'
      FROM generate_series(1, ${ROUNDS}) g RETURNING id`.execute(t.db);
    expect(rows).toHaveLength(ROUNDS);
    let winsA = 0;
    let winsB = 0;
    for (const { id } of rows) {
      const ref = { type: 'raw_data_package' as const, id, attempt: 0 };
      const [a, b] = await Promise.all([
        claim(t.db, ref, { workerId: 'A' }),
        claim(other.db, ref, { workerId: 'B' }),
      ]);
      expect(Number(a.applied) + Number(b.applied)).toBe(1);
      if (a.applied) winsA++;
      else winsB++;
      const row = await readOperation(t.db, 'raw_data_package', id);
      expect(row?.claimedBy).toBe(a.applied ? 'A' : 'B');
    }
    expect(winsA + winsB).toBe(ROUNDS);
  }, 120_000);
});

describe('a zombie after a stall recovery', () => {
  it('changes nothing: no completion, no progress, no retry, no failure, no events', async () => {
    const id = await seedOperation(t.db, t.locations, 'data_transfer', { status: 'scheduled', attempt: 0 });
    const zombie = { type: 'data_transfer' as const, id, attempt: 0 };
    expect((await claim(t.db, zombie, { workerId: 'frozen' })).applied).toBe(true);
    // The monitor declares it stalled; the operation moves to attempt 1 and another worker takes it.
    expect((await recoverStalled(t.db, zombie, {}, { event: {} })).applied).toBe(true);
    const fresh = { ...zombie, attempt: 1 };
    await t.db.updateTable('data_transfers').set({ status: 'scheduled' }).where('id', '=', id).execute();
    expect((await claim(other.db, fresh, { workerId: 'healthy' })).applied).toBe(true);

    const before = await readOperation(t.db, 'data_transfer', id);
    const side = await sideCounts(t.db);
    const withSide = {
      event: {},
      notification: { level: 'ERROR' as const, eventKind: 'x', subject: 's', body: 'b' },
    };
    // The frozen worker wakes up and tries everything it might.
    expect((await updateProgress(t.db, zombie, { bytesDone: 99 })).applied).toBe(false);
    expect((await complete(t.db, zombie, withSide)).applied).toBe(false);
    expect(
      (await resetForRetry(t.db, zombie, { delayMs: 0, error: { code: 'X', message: 'x' } }, withSide))
        .applied,
    ).toBe(false);
    expect((await markFailed(t.db, zombie, { error: { code: 'X', message: 'x' } }, withSide)).applied).toBe(
      false,
    );
    expect(await readOperation(t.db, 'data_transfer', id)).toEqual(before);
    expect(await sideCounts(t.db)).toEqual(side);
    // The healthy worker's completion still applies, once.
    expect((await complete(other.db, fresh, { event: {} })).applied).toBe(true);
    expect((await complete(other.db, fresh, { event: {} })).applied).toBe(false);
    const completions = await t.db
      .selectFrom('operation_events')
      .select('attempt')
      .where('operation_id', '=', id)
      .where('event', '=', 'completed')
      .execute();
    expect(completions).toEqual([{ attempt: 1 }]);
  });
});
