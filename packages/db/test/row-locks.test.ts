// A process frozen while it holds a row lock (issue 13 adversary, F1): the monitor's locking reads
// must skip the row instead of waiting for it, and every transaction of a pool with a client-side
// statement bound must be bounded by the server too (statement, lock wait, idle in transaction), so
// a timed-out client never leaves a backend waiting and a frozen holder is ended by the server.
import { randomBytes } from 'node:crypto';
import { within } from '@ccat/test-support';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createDatabase,
  lockInProgressMany,
  readOperation,
  serverBounds,
  tryLockInProgress,
  type CcatDatabase,
} from '../src/index.js';
import { createTestDatabase, seedOperation, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
const opened: CcatDatabase[] = [];
const holders: pg.Client[] = [];
beforeAll(async () => {
  t = await createTestDatabase('db_row_locks', { locations: true });
});
afterAll(async () => {
  for (const h of holders) await h.end().catch(() => undefined);
  for (const d of opened) await d.close().catch(() => undefined);
  await t?.close();
});

const type = 'raw_data_package' as const;

/** A session of its own (like a frozen process's) holding FOR UPDATE on one row until `release()`. */
async function holdRow(id: string): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: t.url, options: `-c search_path=${t.schema}` });
  holders.push(client);
  await client.connect();
  await client.query('BEGIN');
  await client.query('SELECT id FROM raw_data_packages WHERE id = $1 FOR UPDATE', [id]);
  return { release: () => client.query('ROLLBACK').then(() => undefined) };
}

function pool(statementTimeoutMs: number, max = 2): { database: CcatDatabase; app: string } {
  const app = `row-locks-${randomBytes(4).toString('hex')}`;
  const database = createDatabase({
    connectionString: t.url,
    schema: t.schema,
    max,
    applicationName: app,
    statementTimeoutMs,
  });
  opened.push(database);
  return { database, app };
}

async function backends(app: string): Promise<number> {
  const { rows } = await sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity
    WHERE application_name = ${app}`.execute(t.db);
  return rows[0]!.n;
}

describe('locking reads of the monitor never wait for a row lock', () => {
  it('lockInProgressMany locks the free rows and reports a row held elsewhere as busy', async () => {
    const ids = await Promise.all(
      Array.from({ length: 5 }, () =>
        seedOperation(t.db, t.locations, type, { status: 'in_progress', attempt: 1 }),
      ),
    );
    const [done] = await Promise.all([
      seedOperation(t.db, t.locations, type, { status: 'completed', attempt: 1 }),
    ]);
    const held = await holdRow(ids[2]!);
    try {
      const result = await within(
        t.db.transaction().execute((trx) =>
          lockInProgressMany(
            trx,
            type,
            [...ids, done].map((id) => ({ id, attempt: 1 })),
          ),
        ),
        10_000,
      );
      expect(result).not.toBe('hung');
      expect(result).not.toBeInstanceOf(Error);
      const { locked, busy } = result as Exclude<typeof result, Error | 'hung'>;
      expect(locked.map((r) => r.id).sort()).toEqual(ids.filter((_, i) => i !== 2).sort());
      expect(busy).toEqual([{ id: ids[2], attempt: 1 }]);
    } finally {
      await held.release();
    }
  });

  it("tryLockInProgress answers 'locked' for a held row, the row once free, undefined once moved on", async () => {
    const id = await seedOperation(t.db, t.locations, type, { status: 'in_progress', attempt: 3 });
    const ref = { type, id, attempt: 3 };
    const held = await holdRow(id);
    const whileHeld = await within(
      t.db.transaction().execute((trx) => tryLockInProgress(trx, ref)),
      10_000,
    );
    await held.release();
    expect(whileHeld).toBe('locked');
    const free = await t.db.transaction().execute((trx) => tryLockInProgress(trx, ref));
    expect(free).toMatchObject({ id, attempt: 3, status: 'in_progress' });
    expect(await tryLockInProgress(t.db, { ...ref, attempt: 2 })).toBeUndefined();
  });
});

describe('server-side bounds of every transaction (statementTimeoutMs set)', () => {
  it('derives statement, lock and idle bounds below the client bound', () => {
    expect(serverBounds(30_000)).toEqual({
      statementTimeoutMs: 29_000,
      lockTimeoutMs: 20_000,
      idleInTransactionMs: 10_000,
    });
    const b = serverBounds(1500);
    expect(b.statementTimeoutMs).toBeLessThan(1500);
    expect(b.lockTimeoutMs).toBeLessThanOrEqual(b.statementTimeoutMs);
  });

  it('a lock wait inside a transaction ends server-side; the pool keeps its connections', async () => {
    const id = await seedOperation(t.db, t.locations, type, { status: 'in_progress', attempt: 1 });
    const { database, app } = pool(1500, 2);
    const held = await holdRow(id);
    try {
      // Four waits, each longer than the client bound would allow: every one is ended by the server
      // (lock_timeout, or statement_timeout on a loaded machine: both a little below the client
      // bound) on a connection the pool keeps, so the backends never exceed `max`.
      const waits = Array.from({ length: 4 }, () =>
        database.db.transaction().execute(async (trx) => {
          await sql`SELECT id FROM raw_data_packages WHERE id = ${id} FOR UPDATE`.execute(trx);
        }),
      );
      const outcomes = await Promise.all(waits.map((w) => within(w, 15_000)));
      for (const o of outcomes) {
        expect(o).toBeInstanceOf(Error);
        expect(String((o as Error).message)).toMatch(/canceling statement due to (lock|statement) timeout/);
      }
      expect(await backends(app)).toBeLessThanOrEqual(2);
      // The connections are fine afterwards.
      expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(database.db)).rows[0]!.one).toBe(1);
    } finally {
      await held.release();
    }
  });

  it('a transaction left idle (its process frozen) is ended by the server, releasing its row locks', async () => {
    const id = await seedOperation(t.db, t.locations, type, { status: 'in_progress', attempt: 1 });
    const { database, app } = pool(1500, 1);
    let frozen: () => void = () => undefined;
    const thawed = new Promise<void>((r) => (frozen = r));
    let holding: () => void = () => undefined;
    const holds = new Promise<void>((r) => (holding = r));
    const stuck = database.db.transaction().execute(async (trx) => {
      await sql`SELECT id FROM raw_data_packages WHERE id = ${id} FOR UPDATE`.execute(trx);
      holding();
      // Frozen: no statement for longer than the idle bound while holding the lock.
      await thawed;
    });
    stuck.catch(() => undefined);
    await holds;
    // Another session (a monitor) gets the row once the server ended the idle holder.
    const got = await within(
      t.db
        .transaction()
        .execute((trx) => sql`SELECT id FROM raw_data_packages WHERE id = ${id} FOR UPDATE`.execute(trx)),
      10_000,
    );
    frozen();
    expect(got).not.toBe('hung');
    expect(got).not.toBeInstanceOf(Error);
    expect(await within(stuck, 5000)).toBeInstanceOf(Error);
    expect(await backends(app)).toBeLessThanOrEqual(1);
    expect(await readOperation(t.db, type, id)).toMatchObject({ status: 'in_progress' });
  });
});
