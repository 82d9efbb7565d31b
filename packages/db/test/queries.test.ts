import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countsByTypeAndStatus,
  createDatabase,
  duePending,
  failuresByErrorCode,
  markFailed,
  resetForRetry,
  nextStaleInProgressInMs,
  staleInProgress,
  staleScheduled,
  waitingInQueues,
} from '../src/index.js';
import { sql } from 'kysely';
import pg from 'pg';
import { createTestDatabase, seedOperation, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_queries', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

describe('query helpers', () => {
  it('duePending: only due pending rows, oldest first, limited', async () => {
    const a = await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'pending',
      nextAttemptInS: -30,
      attempt: 2,
    });
    const b = await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'pending',
      nextAttemptInS: -60,
    });
    await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'pending',
      nextAttemptInS: 600,
    });
    await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'scheduled',
      nextAttemptInS: -600,
    });
    const due = await duePending(t.db, 'long_term_archive_transfer');
    expect(due.map((r) => r.id)).toEqual([b, a]);
    expect(due[1]).toEqual({ type: 'long_term_archive_transfer', id: a, attempt: 2 });
    expect(await duePending(t.db, 'long_term_archive_transfer', { limit: 1 })).toHaveLength(1);
  });

  it('nextStaleInProgressInMs: when the next live in-progress row reaches its timeout', async () => {
    const opts = { olderThanMs: 60_000 };
    expect(await nextStaleInProgressInMs(t.db, 'data_transfer_package', opts)).toBeUndefined();
    // Already stale (staleInProgress lists it), pending, and one 20 s into its minute.
    await seedOperation(t.db, t.locations, 'data_transfer_package', {
      status: 'in_progress',
      lastSeenAgoS: 600,
    });
    await seedOperation(t.db, t.locations, 'data_transfer_package', { status: 'pending', lastSeenAgoS: 50 });
    expect(await nextStaleInProgressInMs(t.db, 'data_transfer_package', opts)).toBeUndefined();
    await seedOperation(t.db, t.locations, 'data_transfer_package', {
      status: 'in_progress',
      lastSeenAgoS: 20,
    });
    await seedOperation(t.db, t.locations, 'data_transfer_package', {
      status: 'in_progress',
      lastSeenAgoS: 5,
    });
    const inMs = await nextStaleInProgressInMs(t.db, 'data_transfer_package', opts);
    expect(inMs).toBeGreaterThan(39_000);
    expect(inMs).toBeLessThanOrEqual(40_000);
  });

  it('staleInProgress and staleScheduled: by the database clock, with a duration', async () => {
    const old = await seedOperation(t.db, t.locations, 'deletion', {
      status: 'in_progress',
      lastSeenAgoS: 7200,
    });
    await seedOperation(t.db, t.locations, 'deletion', { status: 'in_progress', lastSeenAgoS: 10 });
    const stale = await staleInProgress(t.db, 'deletion', { olderThanMs: 3600_000 });
    expect(stale.map((s) => s.id)).toEqual([old]);
    expect(stale[0]).toMatchObject({ type: 'deletion', status: 'in_progress' });
    const lost = await seedOperation(t.db, t.locations, 'deletion', {
      status: 'scheduled',
      scheduledAgoS: 900,
    });
    await seedOperation(t.db, t.locations, 'deletion', { status: 'scheduled', scheduledAgoS: 5 });
    expect((await staleScheduled(t.db, 'deletion', { olderThanMs: 600_000 })).map((s) => s.id)).toEqual([
      lost,
    ]);
  });

  it('countsByTypeAndStatus covers every table, unpack separately', async () => {
    await seedOperation(t.db, t.locations, 'unpack', { status: 'failed' });
    const counts = await countsByTypeAndStatus(t.db);
    const get = (type: string, status: string) =>
      counts.find((c) => c.type === type && c.status === status)?.count;
    expect(get('unpack', 'failed')).toBe(1);
    expect(get('data_transfer', 'completed')).toBe(1);
    expect(get('deletion', 'in_progress')).toBe(2);
    expect(get('long_term_archive_transfer', 'pending')).toBe(3);
  });

  it('failuresByErrorCode groups failure events in a window, with examples', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const id = await seedOperation(t.db, t.locations, 'data_transfer', { status: 'in_progress' });
      ids.push(id);
      await resetForRetry(
        t.db,
        { type: 'data_transfer', id, attempt: 0 },
        { delayMs: 0, error: { code: 'CONNECTION_RESET', message: `reset ${i}` } },
        { event: {} },
      );
    }
    const f = await seedOperation(t.db, t.locations, 'unpack', { status: 'in_progress' });
    await markFailed(
      t.db,
      { type: 'unpack', id: f, attempt: 0 },
      { error: { code: 'CHECKSUM_MISMATCH', message: 'bad' } },
      { event: {} },
    );
    // An old event outside the window.
    await t.db
      .insertInto('operation_events')
      .values({
        operation_type: 'data_transfer',
        operation_id: ids[0]!,
        attempt: 0,
        event: 'retry_scheduled',
        error_code: 'CONNECTION_RESET',
        created_at: new Date(Date.now() - 3 * 86_400_000),
      })
      .execute();
    const groups = await failuresByErrorCode(t.db, { sinceMs: 86_400_000, examples: 2 });
    expect(groups[0]).toMatchObject({
      errorCode: 'CONNECTION_RESET',
      operationType: 'data_transfer',
      count: 4,
    });
    expect(groups[0]!.examples).toHaveLength(2);
    expect(groups[0]!.examples[0]).toMatchObject({
      operationId: ids[3],
      event: 'retry_scheduled',
      message: 'reset 3',
    });
    expect(groups[0]!.examples[0]!.at).toBeInstanceOf(Date);
    expect(groups.find((g) => g.errorCode === 'CHECKSUM_MISMATCH')).toMatchObject({
      operationType: 'unpack',
      count: 1,
    });
    expect(await failuresByErrorCode(t.db, { sinceMs: 86_400_000, type: 'unpack' })).toHaveLength(1);
    expect(await failuresByErrorCode(t.db, { sinceMs: 86_400_000, code: 'NOPE' })).toEqual([]);
    expect(
      (await failuresByErrorCode(t.db, { sinceMs: 4 * 86_400_000, code: 'CONNECTION_RESET' }))[0]!.count,
    ).toBe(5);
  });
});

describe('createDatabase', () => {
  it('never ends a pool the caller brought', async () => {
    const pool = new pg.Pool({ connectionString: t.url, max: 1, options: `-c search_path=${t.schema}` });
    const d = createDatabase({ pool });
    expect((await d.db.selectFrom('sites').select('name').execute()).length).toBe(2);
    await d.close();
    await d.close();
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    await pool.end();
  });

  it('rejects a schema name that is not an identifier', () => {
    expect(() => createDatabase({ connectionString: t.url, schema: 'a"b' })).toThrow(/invalid schema name/);
  });

  it('reports errors of idle clients instead of crashing', async () => {
    const errors: Error[] = [];
    const d = createDatabase({
      connectionString: t.url,
      schema: t.schema,
      max: 1,
      onError: (e) => errors.push(e),
    });
    await d.db.selectFrom('sites').select('id').execute();
    // Terminate our own idle backend (found by application_name + schema): the pool sees an error event.
    const app = await d.db
      .selectNoFrom((eb) => eb.fn<number>('pg_backend_pid', []).as('pid'))
      .executeTakeFirstOrThrow();
    const killer = createDatabase({ connectionString: t.url, schema: t.schema, max: 1 });
    await killer.db
      .selectNoFrom((eb) => eb.fn<boolean>('pg_terminate_backend', [eb.val(app.pid)]).as('ok'))
      .execute();
    await killer.close();
    for (let i = 0; i < 100 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(errors.length).toBeGreaterThan(0);
    // The pool recovers with a new connection.
    expect((await d.db.selectFrom('sites').select('id').execute()).length).toBe(2);
    await d.close();
  });

  it('waitingInQueues: a pending row waiting out its backoff has waited since its last update, not since it falls due', async () => {
    const id = await seedOperation(t.db, t.locations, 'deletion', { status: 'pending', nextAttemptInS: 600 });
    await sql`UPDATE physical_copies SET updated_at = now() - interval '10 minutes' WHERE id = ${id}::bigint`.execute(
      t.db,
    );
    const { rows } = await sql<{ queue: string; updated_at: Date }>`
      SELECT s.short_name || '_' || l.name || '_deletion' AS queue, o.updated_at FROM physical_copies o
      JOIN data_locations l ON l.id = o.location_id JOIN sites s ON s.id = l.site_id
      WHERE o.id = ${id}::bigint`.execute(t.db);
    const waiting = await waitingInQueues(t.db, 'deletion', [rows[0]!.queue], { limit: 10 });
    const row = waiting.find((w) => w.id === id);
    expect(row).toMatchObject({ status: 'pending', queue: rows[0]!.queue });
    expect(row!.since.getTime()).toBe(rows[0]!.updated_at.getTime());
    expect(row!.dueInMs).toBeGreaterThan(590_000);
  });
});
