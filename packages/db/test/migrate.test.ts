import { classifyError } from '@ccat/errors';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  appliedMigrations,
  assertSearchPath,
  createDatabase,
  migrateLockKey,
  migrateToLatest,
  migrateWhenReachable,
} from '../src/index.js';
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

  it('refuse when the search_path leads elsewhere (a pooler dropped `options`): nothing created anywhere', async () => {
    const s = await freshSchema('mig_path');
    const target = `${s.schema}_target`;
    // A caller's pool whose search_path is another schema, as a pooler leaves it when it drops `options`.
    const pool = new pg.Pool({ connectionString: s.url, max: 1, options: `-c search_path=${s.schema}` });
    const db = createDatabase({ pool });
    try {
      const thrown = await migrateToLatest(db.db, { schema: target }).then(
        () => undefined,
        (e: unknown) => classifyError(e),
      );
      expect(thrown?.code).toBe('DB_SEARCH_PATH');
      expect(thrown?.name).toBe('ConfigurationError');
      expect(thrown?.message).toContain(`database.schema is "${target}"`);
      expect(thrown?.message).toContain(`current schema is "${s.schema}"`);
      expect(thrown?.message).toMatch(/startup parameter "options".*ALTER ROLE/);
      const tables = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM information_schema.tables
        WHERE table_schema IN (${s.schema}, ${target})`.execute(db.db);
      expect(tables.rows[0]?.n).toBe(0);
      const schemas = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_namespace WHERE nspname = ${target}`.execute(db.db);
      expect(schemas.rows[0]?.n).toBe(0);
      await expect(assertSearchPath(db.db, s.schema)).resolves.toBeUndefined();
      await expect(assertSearchPath(db.db, target)).rejects.toMatchObject({ code: 'DB_SEARCH_PATH' });
    } finally {
      await db.close();
      await pool.end();
    }
  });

  it('hold no lock once done, and bound the wait for another migrate with a message saying so', async () => {
    const s = await freshSchema('mig_lock');
    const db = createDatabase({ connectionString: s.url, schema: s.schema, max: 2 });
    const other = new pg.Client({ connectionString: s.url });
    await other.connect();
    try {
      await migrateToLatest(db.db, { schema: s.schema });
      const held = await sql<{ n: number }>`
        SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND objid = (hashtext(${migrateLockKey(s.schema)})::bigint & 4294967295)::oid`.execute(
        db.db,
      );
      expect(held.rows[0]?.n).toBe(0);
      // Another migrate holds the lock (in its transaction).
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(hashtext($1))', [migrateLockKey(s.schema)]);
      const started = Date.now();
      const thrown = await migrateToLatest(db.db, { schema: s.schema, lockTimeoutMs: 300 }).then(
        () => undefined,
        (e: unknown) => classifyError(e),
      );
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(thrown?.code).toBe('DB_LOCK_NOT_AVAILABLE');
      expect(thrown?.retryable).toBe(true);
      expect(thrown?.message).toContain(`another migrate is running on schema "${s.schema}"`);
      // Waited out at start: resolves once the other migrate's transaction ends.
      const waits: string[] = [];
      const waiting = migrateWhenReachable(db.db, {
        schema: s.schema,
        lockTimeoutMs: 200,
        intervalMs: 50,
        onWaiting: (e) => waits.push(e.code),
      });
      await new Promise((r) => setTimeout(r, 600));
      await other.query('COMMIT');
      expect((await waiting)?.applied).toEqual([]);
      expect(waits).toEqual(['DB_LOCK_NOT_AVAILABLE']);
    } finally {
      await other.end();
      await db.close();
    }
  });

  it('at start, wait for a database that is not reachable yet; stop waiting when told', async () => {
    const s = await freshSchema('mig_wait');
    const u = new URL(s.url);
    u.port = '9'; // discard: closed on loopback
    u.hostname = '127.0.0.1';
    const db = createDatabase({ connectionString: u.toString(), schema: s.schema, max: 1 });
    const stop = new AbortController();
    try {
      const waits: string[] = [];
      const waiting = migrateWhenReachable(db.db, {
        schema: s.schema,
        intervalMs: 50,
        signal: stop.signal,
        onWaiting: (e) => waits.push(e.code),
      });
      await new Promise((r) => setTimeout(r, 500));
      stop.abort();
      expect(await waiting).toBeUndefined();
      expect(waits).toEqual(['CONNECTION_REFUSED']);
      // A refusal no wait cures is thrown at once.
      const bad = new URL(s.url);
      bad.pathname = '/ccat_no_such_database';
      const refused = createDatabase({ connectionString: bad.toString(), schema: s.schema, max: 1 });
      try {
        await expect(migrateWhenReachable(refused.db, { schema: s.schema })).rejects.toMatchObject({
          code: 'DB_CONFIGURATION',
        });
      } finally {
        await refused.close();
      }
    } finally {
      await db.close();
    }
  });
});
