import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, readOperation, type CcatDatabase } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_prepared', { max: 1 });
});
afterAll(async () => {
  await t?.close();
});

const preparedOn = async (d: CcatDatabase) =>
  (
    await sql<{ name: string }>`SELECT name FROM pg_prepared_statements WHERE name LIKE 'ccat_%'`.execute(
      d.db,
    )
  ).rows.map((r) => r.name);

describe('prepared statements', () => {
  it('each parameterised statement is prepared once per connection and reused', async () => {
    // One connection (max 1), so the view shows this connection's statements.
    await readOperation(t.db, 'raw_data_package', '1');
    const first = await preparedOn(t.database);
    await readOperation(t.db, 'raw_data_package', '2');
    await readOperation(t.db, 'unpack', '3');
    const after = await preparedOn(t.database);
    expect(first.length).toBeGreaterThan(0);
    // The same statement text was reused; unpack's differs (its own columns) and got its own.
    expect(after.length).toBe(first.length + 1);
  });

  it('a bounded number per connection: dynamic statements beyond it run unprepared, and still work', async () => {
    for (let i = 0; i < 300; i++) {
      const r = await sql<{ v: number }>`SELECT ${i}::int + ${sql.lit(i)} AS v`.execute(t.db);
      expect(r.rows[0]!.v).toBe(2 * i);
    }
    expect((await preparedOn(t.database)).length).toBeLessThanOrEqual(256);
  });

  it('can be turned off (transaction-mode poolers)', async () => {
    const d = createDatabase({
      connectionString: t.url,
      schema: t.schema,
      max: 1,
      preparedStatements: false,
    });
    await readOperation(d.db, 'raw_data_package', '1');
    expect(await preparedOn(d)).toEqual([]);
    await d.close();
  });
});
