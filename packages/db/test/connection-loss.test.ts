// A connection lost while a client is checked out (issue 11, input 1): pg-pool takes its error
// listener off a client it hands out, so a terminated backend or a restarted server emitted an
// unhandled 'error' on the Client and ended the process. A private PostgreSQL of this test's own:
// its backends are terminated and it is restarted, never the shared server.
import { PrivatePostgres, waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, migrateToLatest, migrationStatus } from '../src/index.js';

let server: PrivatePostgres;
beforeAll(async () => {
  server = await PrivatePostgres.start();
}, 90_000);
afterAll(async () => {
  await server?.destroy();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a pool whose connections are lost', () => {
  it('reports a backend terminated while its client is checked out, and carries on', async () => {
    const errors: Error[] = [];
    const database = createDatabase({
      connectionString: server.url,
      max: 3,
      onError: (e) => errors.push(e),
    });
    try {
      // Hold a client (a transaction) while every backend is terminated: the checked-out client's
      // socket ends with 57P01, then the statement after it fails: no process-wide 'error'.
      const outcome = await database.db
        .transaction()
        .execute(async (trx) => {
          await sql`SELECT 1`.execute(trx);
          expect(await server.terminateBackends()).toBeGreaterThan(0);
          await waitFor(() => errors.length > 0, { timeoutMs: 10_000, message: 'error reported' });
          await sql`SELECT 1`.execute(trx);
          return 'no error';
        })
        .catch((e: unknown) => e);
      expect(outcome).toBeInstanceOf(Error);
      expect(errors.length).toBeGreaterThan(0);
      // The pool replaces the client: the next statement works.
      expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(database.db)).rows).toEqual([{ one: 1 }]);
    } finally {
      await database.close();
    }
  }, 60_000);

  it('survives backends terminated every 250 ms under load and a fast restart, then works again', async () => {
    const errors: Error[] = [];
    const database = createDatabase({ connectionString: server.url, max: 4, onError: (e) => errors.push(e) });
    try {
      let stop = false;
      let ok = 0;
      let failed = 0;
      const load = (async () => {
        while (!stop) {
          await Promise.all(
            [1, 2, 3, 4].map(() =>
              sql`SELECT pg_sleep(0.05)`.execute(database.db).then(
                () => ok++,
                () => failed++,
              ),
            ),
          );
        }
      })();
      const until = Date.now() + 2_500;
      while (Date.now() < until) {
        await server.terminateBackends().catch(() => 0);
        await sleep(250);
      }
      await server.restart();
      stop = true;
      await load;
      expect(failed).toBeGreaterThan(0);
      expect(errors.length).toBeGreaterThan(0);
      await waitFor(
        () =>
          sql`SELECT 1`.execute(database.db).then(
            () => true,
            () => false,
          ),
        { timeoutMs: 15_000, message: 'queries work again after the restart' },
      );
      expect(ok).toBeGreaterThan(0);
    } finally {
      await database.close();
    }
  }, 90_000);
});

describe('migrationStatus', () => {
  it('lists what is pending on a fresh schema and nothing once migrated', async () => {
    const database = createDatabase({ connectionString: server.url, schema: 'status_check', max: 2 });
    try {
      const fresh = await migrationStatus(database.db, { schema: 'status_check' });
      expect(fresh.upToDate).toBe(false);
      expect(fresh.applied).toEqual([]);
      expect(fresh.pending).toEqual(fresh.known);
      expect(fresh.known.length).toBeGreaterThan(0);
      await migrateToLatest(database.db, { schema: 'status_check' });
      const done = await migrationStatus(database.db, { schema: 'status_check' });
      expect(done).toMatchObject({ upToDate: true, pending: [], unknown: [] });
      expect(done.applied).toEqual(done.known);
    } finally {
      await database.close();
    }
  }, 60_000);
});
