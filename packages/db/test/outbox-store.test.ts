import { InvalidOperationIdError } from '@ccat/errors';
import { waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  countUndeliveredNotifications,
  createPgOutboxStore,
  type OutboxClaimRequest,
  type PgOutboxStore,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';
import { recording } from './support/plans.js';

let t: TestDatabase;
let store: PgOutboxStore;
beforeAll(async () => {
  t = await createTestDatabase('db_outbox_store', { max: 8 });
  store = createPgOutboxStore(t.db);
});
afterAll(async () => {
  await t?.close();
});
beforeEach(async () => {
  await sql`TRUNCATE notifications`.execute(t.db);
});

const req = (over: Partial<OutboxClaimRequest> = {}): OutboxClaimRequest => ({
  owner: 'relay-a',
  limit: 100,
  leaseMs: 60_000,
  dedupWindowMs: 0,
  maxExamples: 3,
  ...over,
});

const enqueue = (
  i: number,
  over: { dedupKey?: string; time?: Date; level?: 'ERROR' | 'WARNING' | 'INFO' } = {},
) =>
  store.enqueue({
    level: 'ERROR',
    eventKind: 'permanent_failure',
    subject: `transfer ${i} failed`,
    body: `body ${i}`,
    context: { errorCode: 'CHECKSUM_MISMATCH' },
    operation: { type: 'data_transfer', id: String(i), attempt: 2 },
    ...over,
  });

async function row(id: string) {
  const { rows } = await sql<{
    status: string;
    attempts: number;
    locked_by: string | null;
    locked_until: Date | null;
    channel_results: Record<string, unknown>;
    digest_id: string | null;
    digest_of: string | null;
    window_until: Date | null;
    last_error: string | null;
    sent_at: Date | null;
    due_in_ms: number;
  }>`SELECT *, (extract(epoch FROM next_attempt_at - clock_timestamp()) * 1000)::float8 AS due_in_ms
     FROM notifications WHERE id = ${id}`.execute(t.db);
  return rows[0]!;
}

describe('pg outbox store', () => {
  it('enqueue and claim: the notification comes back whole, leased and not due again', async () => {
    const time = new Date('2025-01-02T03:04:05.678Z');
    const id = await enqueue(7, { dedupKey: 'permanent_failure:data_transfer:CHECKSUM_MISMATCH', time });
    const { claimed, digested } = await store.claim(req());
    expect(digested).toBe(0);
    expect(claimed).toHaveLength(1);
    const c = claimed[0]!;
    expect(c.lease.id).toBe(id);
    expect(c.lease.token).toMatch(/^relay-a:/);
    expect(c.attempts).toBe(1);
    expect(c.channelResults).toEqual({});
    expect(c.notification).toEqual({
      id,
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 'transfer 7 failed',
      body: 'body 7',
      context: { errorCode: 'CHECKSUM_MISMATCH', attempt: 2 },
      dedupKey: 'permanent_failure:data_transfer:CHECKSUM_MISMATCH',
      time,
      operation: { type: 'data_transfer', id: '7', attempt: 2 },
    });
    const r = await row(id);
    expect(r.locked_by).toBe(c.lease.token);
    expect(r.attempts).toBe(1);
    expect(r.due_in_ms).toBeGreaterThan(50_000);
    expect((await store.claim(req())).claimed).toHaveLength(0);
  });

  it('rejects an operation id that is not an int8', async () => {
    await expect(
      store.enqueue({
        level: 'INFO',
        eventKind: 'x',
        subject: 's',
        body: '',
        operation: { type: 't', id: 'abc' },
      }),
    ).rejects.toBeInstanceOf(InvalidOperationIdError);
  });

  it('concurrent claimers never get the same row', async () => {
    const all = await Promise.all(Array.from({ length: 120 }, (_, i) => enqueue(i + 1)));
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => store.claim(req({ owner: `relay-${i}`, limit: 25 }))),
    );
    const got = results.flatMap((r) => r.claimed.map((c) => c.lease.id));
    expect(new Set(got).size).toBe(got.length);
    expect(got.length).toBe(120);
    expect(new Set(got)).toEqual(new Set(all));
  });

  it('a lapsed lease brings the row back, and the old lease can no longer write', async () => {
    const id = await enqueue(1);
    const [first] = (await store.claim(req({ leaseMs: 200 }))).claimed;
    const second = await waitFor(async () => (await store.claim(req({ owner: 'relay-b' }))).claimed[0], {
      timeoutMs: 5000,
    });
    expect(second.lease.id).toBe(id);
    expect(second.attempts).toBe(2);
    expect(await store.recordChannel(first!.lease, 'email', { status: 'sent', at: 'x', attempts: 1 })).toBe(
      false,
    );
    expect(await store.settle(first!.lease, { kind: 'sent' })).toBe(false);
    expect((await row(id)).status).toBe('pending');
    expect(await store.settle(second.lease, { kind: 'sent' })).toBe(true);
    const r = await row(id);
    expect(r.status).toBe('sent');
    expect(r.sent_at).toBeInstanceOf(Date);
    expect(r.locked_by).toBeNull();
  });

  it('records each target on its own and keeps them across attempts', async () => {
    const id = await enqueue(1);
    const [c1] = (await store.claim(req())).claimed;
    const sent = { status: 'sent' as const, at: '2025-01-01T00:00:00.000Z', attempts: 1 };
    const down = {
      status: 'retrying' as const,
      at: '2025-01-01T00:00:00.000Z',
      attempts: 1,
      error: 'down',
      code: 'X',
    };
    expect(await store.recordChannel(c1!.lease, 'email', sent)).toBe(true);
    expect(await store.recordChannel(c1!.lease, 'slack:#ops', down)).toBe(true);
    expect(await store.settle(c1!.lease, { kind: 'retry', delayMs: 0, error: 'slack down' })).toBe(true);
    expect((await row(id)).last_error).toBe('slack down');
    const [c2] = (await store.claim(req())).claimed;
    expect(c2!.attempts).toBe(2);
    expect(c2!.channelResults).toEqual({ email: sent, 'slack:#ops': down });
  });

  it('retry waits its delay; release does not count the attempt; failed is final', async () => {
    const id = await enqueue(1);
    const [c1] = (await store.claim(req())).claimed;
    await store.settle(c1!.lease, { kind: 'retry', delayMs: 30_000, error: 'e' });
    expect((await row(id)).due_in_ms).toBeGreaterThan(25_000);
    expect((await store.claim(req())).claimed).toHaveLength(0);
    await sql`UPDATE notifications SET next_attempt_at = now() WHERE id = ${id}`.execute(t.db);
    const [c2] = (await store.claim(req())).claimed;
    expect(c2!.attempts).toBe(2);
    await store.settle(c2!.lease, { kind: 'release', delayMs: 0 });
    expect((await row(id)).attempts).toBe(1);
    const [c3] = (await store.claim(req())).claimed;
    expect(c3!.attempts).toBe(2);
    await store.settle(c3!.lease, { kind: 'failed', error: 'gave up' });
    const r = await row(id);
    expect(r).toMatchObject({ status: 'failed', last_error: 'gave up', locked_by: null });
    expect((await store.claim(req())).claimed).toHaveLength(0);
  });

  it('dedup: the first of a key goes at once, the rest wait for one digest at the window end', async () => {
    const key = 'permanent_failure:data_transfer:CHECKSUM_MISMATCH';
    const ids: string[] = [];
    for (let i = 1; i <= 6; i++) ids.push(await enqueue(i, { dedupKey: key }));
    const other = await enqueue(99, { dedupKey: 'other' });
    const first = await store.claim(req({ dedupWindowMs: 700, maxExamples: 3 }));
    expect(first.claimed.map((c) => c.lease.id).sort()).toEqual([ids[0], other].sort());
    expect(first.digested).toBe(5);
    const leader = await row(ids[0]!);
    expect(leader.window_until).toBeInstanceOf(Date);
    const followers = await Promise.all(ids.slice(1).map(row));
    const digestId = followers[0]!.digest_id!;
    expect(followers.every((f) => f.status === 'digested' && f.digest_id === digestId)).toBe(true);
    const digestRow = await row(digestId);
    expect(digestRow).toMatchObject({ status: 'pending', digest_of: ids[0] });
    // Another alike row inside the window joins the same digest.
    const late = await enqueue(7, { dedupKey: key });
    expect((await store.claim(req({ dedupWindowMs: 700 }))).digested).toBe(1);
    expect((await row(late)).digest_id).toBe(digestId);

    const digest = await waitFor(
      async () =>
        (await store.claim(req({ dedupWindowMs: 700, maxExamples: 3 }))).claimed.find((c) => c.digest),
      { timeoutMs: 5000 },
    );
    expect(digest.lease.id).toBe(digestId);
    expect(digest.notification).toMatchObject({
      eventKind: 'permanent_failure',
      dedupKey: key,
      level: 'ERROR',
    });
    expect(digest.digest).toMatchObject({ dedupKey: key, count: 7 });
    expect(digest.digest!.examples.map((e) => e.id)).toEqual(ids.slice(0, 3));
    expect(digest.digest!.examples[0]!.operation).toEqual({ type: 'data_transfer', id: '1', attempt: 2 });
    expect(digest.digest!.firstAt.getTime()).toBeLessThanOrEqual(digest.digest!.lastAt.getTime());

    // After the window, the next alike row opens a new window and goes at once.
    const next = await enqueue(8, { dedupKey: key });
    const again = await store.claim(req({ dedupWindowMs: 700 }));
    expect(again.claimed.map((c) => c.lease.id)).toEqual([next]);
    expect(again.digested).toBe(0);
  });

  it('concurrent claimers agree on one first row and one digest per key', async () => {
    const key = 'k-concurrent';
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => enqueue(i + 1, { dedupKey: key })));
    const results = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        store.claim(req({ owner: `r${i}`, limit: 40, dedupWindowMs: 60_000 })),
      ),
    );
    expect(results.flatMap((r) => r.claimed)).toHaveLength(1);
    expect(results.reduce((n, r) => n + r.digested, 0)).toBe(199);
    const { rows } = await sql<{ n: number }>`
      SELECT count(*)::int AS n FROM notifications WHERE digest_of IS NOT NULL`.execute(t.db);
    expect(rows[0]!.n).toBe(1);
    const { rows: digestedRows } = await sql<{ n: number; d: number }>`
      SELECT count(*)::int AS n, count(DISTINCT digest_id)::int AS d FROM notifications WHERE status = 'digested'`.execute(
      t.db,
    );
    expect(digestedRows[0]).toEqual({ n: 199, d: 1 });
    expect(ids).toHaveLength(200);
  });

  it('with the window at 0 every row is delivered on its own', async () => {
    await Promise.all([1, 2, 3].map((i) => enqueue(i, { dedupKey: 'same' })));
    const r = await store.claim(req({ dedupWindowMs: 0 }));
    expect(r.claimed).toHaveLength(3);
    expect(r.digested).toBe(0);
  });

  it('renew extends only leases still held, fenced on the token', async () => {
    const a = await enqueue(1);
    const b = await enqueue(2);
    const { claimed } = await store.claim(req({ leaseMs: 1000 }));
    const [la, lb] = claimed.map((c) => c.lease);
    expect(await store.renew([la!, lb!], 60_000)).toEqual([a, b]);
    expect((await row(a)).due_in_ms).toBeGreaterThan(50_000);
    // b is taken over (its lease lapsed and another relay claimed it); a is settled.
    await sql`UPDATE notifications SET locked_by = 'relay-b:other' WHERE id = ${b}`.execute(t.db);
    expect(await store.settle(la!, { kind: 'sent' })).toBe(true);
    expect(await store.renew([la!, lb!], 60_000)).toEqual([]);
    expect((await row(b)).locked_by).toBe('relay-b:other');
    expect(await store.renew([], 60_000)).toEqual([]);
  });

  it('the claim never takes a row past maxAttempts: a non-ERROR row is marked failed, an ERROR row is claimed', async () => {
    const warning = await enqueue(1, { level: 'WARNING' });
    const error = await enqueue(2);
    const fresh = await enqueue(3, { level: 'WARNING' });
    await sql`UPDATE notifications SET attempts = 3, last_error = 'smtp down' WHERE id IN (${warning}, ${error})`.execute(
      t.db,
    );
    const result = await store.claim(req({ maxAttempts: 3 }));
    expect(result.exhausted).toBe(1);
    expect(result.claimed.map((c) => [c.notification.id, c.attempts])).toEqual([
      [error, 4],
      [fresh, 1],
    ]);
    expect(await row(warning)).toMatchObject({ status: 'failed', attempts: 3, locked_by: null });
    expect((await row(warning)).last_error).toBe(
      'undeliverable: delivery attempts used up, the last one never settled (its relay stopped or lost the lease) (3 attempts); last error: smtp down',
    );
  });

  it('counts undelivered notifications by level: retried, due and failed rows, with the oldest', async () => {
    const old = new Date(Date.now() - 3_600_000);
    const retried = await enqueue(1, { time: old });
    await enqueue(2); // due now, not yet taken
    const failed = await enqueue(3, { level: 'WARNING' });
    const sent = await enqueue(4);
    await sql`UPDATE notifications SET attempts = 2, next_attempt_at = now() + interval '1 hour' WHERE id = ${retried}`.execute(
      t.db,
    );
    await sql`UPDATE notifications SET status = 'failed', attempts = 12 WHERE id = ${failed}`.execute(t.db);
    await sql`UPDATE notifications SET status = 'sent' WHERE id = ${sent}`.execute(t.db);
    // A digest waiting for its window is not undelivered.
    await sql`INSERT INTO notifications (level, event_kind, subject, body, next_attempt_at)
      VALUES ('ERROR', 'digest', 's', 'b', now() + interval '10 minutes')`.execute(t.db);
    expect(await countUndeliveredNotifications(t.db)).toEqual([
      { level: 'ERROR', pending: 2, failed: 0, oldestAt: old },
      { level: 'WARNING', pending: 0, failed: 1, oldestAt: expect.any(Date) },
    ]);
  });
});

describe('a leased notification is found by its id, whatever the statistics', () => {
  it('settle, recordChannel and renew read their own rows, not every pending one', async () => {
    // Statistics taken while nothing was pending, then 3 000 pending and leased: the planner took the
    // partial due index for the cheaper path to one row and read every pending row per statement.
    await using own = await createTestDatabase('db_outbox_plan');
    const insert = (status: string, n: number) =>
      sql<{ id: string }>`
        INSERT INTO notifications (level, event_kind, subject, body, status, locked_by, locked_until)
        SELECT 'WARNING', 'k', 's', 'b', ${status}, 'tok', now() + interval '1 hour'
        FROM generate_series(1, ${n}) RETURNING id::text AS id`.execute(own.db);
    await insert('sent', 100);
    await sql`ANALYZE notifications`.execute(own.db);
    const { rows } = await insert('pending', 3000);
    await using rec = recording(own);
    const leased = createPgOutboxStore(rec.database.db);
    const lease = { id: rows[0]!.id, token: 'tok' };
    await leased.recordChannel(lease, 'log', { status: 'sent', at: new Date().toISOString(), attempts: 1 });
    await leased.renew([lease], 60_000);
    await leased.settle(lease, { kind: 'sent' });
    expect(rec.sent).toHaveLength(3);
    for (const statement of rec.sent) {
      const scans = await rec.scans(statement, 'notifications');
      expect(scans.length, statement.text).toBeGreaterThan(0);
      for (const n of scans) {
        expect(n['Index Name'], statement.text).toBe('notifications_pkey');
        expect(Number(n['Actual Rows']) * Number(n['Actual Loops'])).toBeLessThanOrEqual(1);
      }
    }
  });
});
