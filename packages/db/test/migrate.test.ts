import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { appliedMigrations, createDatabase, migrateToLatest } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

const schemas: TestDatabase[] = [];
afterAll(async () => {
  await Promise.all(schemas.map((s) => s.close()));
});

/** An empty schema (dropped at the end with every `<schema>_*` the test derived from it). */
async function freshSchema(label: string): Promise<TestDatabase> {
  const s = await createTestDatabase(label, { migrate: false, max: 1 });
  // The fixture makes the schema; migrations must also work when it does not exist yet.
  schemas.push(s);
  return s;
}

describe('migrations', () => {
  it('run from empty (creating the schema), then re-run as a no-op', async () => {
    const s = await freshSchema('mig_empty');
    const schema = `${s.schema}_new`;
    const db = createDatabase({ connectionString: s.url, schema, max: 2 });
    try {
      expect(await appliedMigrations(db.db, { schema })).toEqual([]);
      const first = await migrateToLatest(db.db, { schema });
      expect(first.applied).toEqual(first.known);
      expect(first.applied[0]).toBe('0001-initial');
      const tables = await sql<{
        table_name: string;
      }>`SELECT table_name FROM information_schema.tables WHERE table_schema = ${schema}`.execute(db.db);
      const names = tables.rows.map((r) => r.table_name);
      for (const t of [
        'sites',
        'data_locations',
        'raw_data_files',
        'raw_data_packages',
        'data_transfer_packages',
        'data_transfers',
        'long_term_archive_transfers',
        'physical_copies',
        'operation_events',
        'notifications',
      ]) {
        expect(names).toContain(t);
      }
      const second = await migrateToLatest(db.db, { schema });
      expect(second.applied).toEqual([]);
      expect(await appliedMigrations(db.db, { schema })).toEqual(first.known);
    } finally {
      await sql`DROP SCHEMA IF EXISTS ${sql.id(schema)} CASCADE`.execute(db.db);
      await db.close();
    }
  });

  it('are safe from several pools at once: one applies, the others find nothing to do', async () => {
    const s = await freshSchema('mig_concurrent');
    const dbs = Array.from({ length: 4 }, () =>
      createDatabase({ connectionString: s.url, schema: s.schema, max: 1 }),
    );
    try {
      const results = await Promise.all(dbs.map((d) => migrateToLatest(d.db, { schema: s.schema })));
      const appliedCounts = results.map((r) => r.applied.length).sort();
      expect(appliedCounts.slice(0, 3)).toEqual([0, 0, 0]);
      expect(appliedCounts[3]).toBe(results[0]!.known.length);
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
  });

  it('are not disturbed by other schemas being dropped meanwhile (a shared server, parallel test files)', async () => {
    const s = await freshSchema('mig_neighbours');
    const admin = createDatabase({ connectionString: s.url, max: 4 });
    try {
      for (let round = 0; round < 3; round++) {
        const others = Array.from({ length: 15 }, (_, i) => `${s.schema}_x${round}_${i}`);
        for (const o of others) {
          await sql`CREATE SCHEMA ${sql.id(o)}`.execute(admin.db);
          await sql`CREATE TABLE ${sql.id(o, 't')} (id int)`.execute(admin.db);
        }
        const target = `${s.schema}_r${round}`;
        const db = createDatabase({ connectionString: s.url, schema: target, max: 1 });
        try {
          const [result] = await Promise.all([
            migrateToLatest(db.db, { schema: target }),
            ...others.map((o) => sql`DROP SCHEMA ${sql.id(o)} CASCADE`.execute(admin.db)),
          ]);
          expect(result.applied).toEqual(result.known);
        } finally {
          await sql`DROP SCHEMA IF EXISTS ${sql.id(target)} CASCADE`.execute(admin.db);
          await db.close();
        }
      }
    } finally {
      await admin.close();
    }
  });
});
