// Text safe at the database boundary (issue 12, items 5 and 6): no message, context, name or
// notification can make a write fail, and no secret is stored. Every writer of this package gets
// the poison; then every text and JSON column of every table is read back and searched.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claim,
  createPgOutboxStore,
  markFailed,
  readOperation,
  recoverStalled,
  resetForRetry,
  storedJson,
  storedText,
  TransitionBatcher,
  type TransitionOptions,
} from '../src/index.js';
import { createTestDatabase, seedOperation, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_safe_text', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

const SECRETS = ['HunterPw2', 'RedisPw9', 'Sup3rS3cret', 'xoxb-1111111111-SlackTok', 'CtxPw42'];
const POISON = [
  'bad\u0000byte',
  'lone \ud800 high and \udfff low',
  'postgres://ccat:HunterPw2@db.example:5432/ops',
  'redis://:RedisPw9@r:6379',
  'pass=Sup3rS3cret',
  'xoxb-1111111111-SlackTok',
].join(' | ');
const FIVE_MB = `${'m'.repeat(5 * 1024 * 1024)}\u0000`;
const CONTEXT = {
  path: 'a\u0000b',
  surrogate: '\ud800',
  [`key\u0000`]: 1,
  nested: { password: 'CtxPw42', list: ['\udc00', 'redis://:RedisPw9@r:6379'] },
  huge: FIVE_MB,
};
const options: TransitionOptions = {
  event: { workerId: 'w\u0000x', message: POISON, context: CONTEXT },
  notification: {
    level: 'ERROR',
    eventKind: 'test',
    subject: POISON,
    body: FIVE_MB + POISON,
    context: CONTEXT,
  },
};

/** Every text, varchar and JSON value in the schema, as text. */
async function everyStoredText(): Promise<string[]> {
  const { rows: columns } = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = ${t.schema} AND data_type IN ('text', 'character varying', 'json', 'jsonb')`.execute(
    t.db,
  );
  const out: string[] = [];
  for (const c of columns) {
    const { rows } = await sql<{
      v: string | null;
    }>`SELECT ${sql.ref(c.column_name)}::text AS v FROM ${sql.table(c.table_name)}`.execute(t.db);
    for (const r of rows) if (r.v !== null) out.push(r.v);
  }
  return out;
}

describe('storedText / storedJson', () => {
  it('redacts, then bounds with a marker', () => {
    const out = storedText(`${'x'.repeat(50)} pass=Sup3rS3cret ${'y'.repeat(5_000_000)}`, 4000);
    expect(out).not.toContain('Sup3rS3cret');
    expect(out.length).toBeLessThan(4100);
    expect(out).toMatch(/…\[truncated \d+ chars\]$/);
  });

  it('JSON: secret keys blanked, strings redacted, the whole document bounded', () => {
    const text = storedJson(CONTEXT);
    expect(text.length).toBeLessThanOrEqual(65_536);
    expect(text).not.toContain('CtxPw42');
    expect(text).not.toContain('RedisPw9');
    expect(text).not.toMatch(/\\u0000|\\ud800|\\udc00/i);
    expect(JSON.parse(text)).toMatchObject({ nested: { password: '[REDACTED]' } });
    const wide = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v'.repeat(4000)]));
    expect(storedJson(wide).length).toBeLessThanOrEqual(65_536);
  });
});

describe('every writer stores poison without failing, and stores no secret', () => {
  it('transitions, the batcher and the outbox store', async () => {
    // NonRetryableError('bad\u0000byte') → markFailed: the failure is recorded (item 5).
    const failed = await seedOperation(t.db, t.locations, 'data_transfer', {
      status: 'in_progress',
      attempt: 1,
    });
    const r = await markFailed(
      t.db,
      { type: 'data_transfer', id: failed, attempt: 1 },
      { error: { code: 'NON_RETRYABLE', message: POISON, errorClass: 'Bad\u0000Class', context: CONTEXT } },
      options,
    );
    expect(r.applied).toBe(true);
    expect(r.operation?.status).toBe('failed');
    expect(r.operation?.lastErrorMessage).toContain('bad\ufffdbyte');

    const retried = await seedOperation(t.db, t.locations, 'unpack', { status: 'in_progress', attempt: 1 });
    const rr = await resetForRetry(
      t.db,
      { type: 'unpack', id: retried, attempt: 1 },
      { delayMs: 0, error: { code: 'X', message: FIVE_MB, context: CONTEXT } },
      options,
    );
    expect(rr.applied).toBe(true);
    expect((await readOperation(t.db, 'unpack', retried))?.lastErrorMessage?.length).toBeLessThan(4100);

    const stalled = await seedOperation(t.db, t.locations, 'deletion', { status: 'in_progress', attempt: 1 });
    expect(
      (
        await recoverStalled(
          t.db,
          { type: 'deletion', id: stalled, attempt: 1 },
          { error: { code: 'STALLED', message: POISON } },
          options,
        )
      ).applied,
    ).toBe(true);

    // A worker id with a NUL in a claim (single-row and batched).
    const one = await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'scheduled',
      attempt: 1,
    });
    expect(
      (
        await claim(
          t.db,
          { type: 'long_term_archive_transfer', id: one, attempt: 1 },
          { workerId: 'w\u0000\ud800' },
          options,
        )
      ).applied,
    ).toBe(true);
    const batcher = new TransitionBatcher(t.db);
    const two = await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'scheduled',
      attempt: 1,
    });
    const three = await seedOperation(t.db, t.locations, 'long_term_archive_transfer', {
      status: 'scheduled',
      attempt: 1,
    });
    const claims = await Promise.all(
      [two, three].map((id) =>
        batcher.claim(
          { type: 'long_term_archive_transfer', id, attempt: 1 },
          { workerId: 'b\u0000\udfff' },
          { event: options.event! },
        ),
      ),
    );
    expect(claims.map((c) => c.applied)).toEqual([true, true]);
    const done = await batcher.complete(
      { type: 'long_term_archive_transfer', id: two, attempt: 1 },
      { event: { message: FIVE_MB + POISON, context: CONTEXT } },
    );
    expect(done.applied).toBe(true);

    // The outbox store: enqueue, a channel result and a delivery error.
    const store = createPgOutboxStore(t.db);
    await store.enqueue({
      level: 'ERROR',
      eventKind: 'k\u0000',
      subject: POISON,
      body: FIVE_MB + POISON,
      context: CONTEXT,
      dedupKey: 'd\u0000',
    });
    const { claimed } = await store.claim({
      owner: 'relay\u0000',
      limit: 10,
      leaseMs: 60_000,
      dedupWindowMs: 0,
      maxExamples: 3,
    });
    expect(claimed.length).toBeGreaterThan(0);
    const lease = claimed[0]!.lease;
    expect(
      await store.recordChannel(lease, 'slack\u0000', {
        status: 'failed',
        at: 'now',
        attempts: 1,
        error: POISON,
      }),
    ).toBe(true);
    expect(await store.settle(lease, { kind: 'failed', error: POISON })).toBe(true);

    const stored = await everyStoredText();
    const all = stored.join('\n');
    expect(all).not.toContain('\u0000');
    for (const secret of SECRETS) expect(all, secret).not.toContain(secret);
    expect(Math.max(...stored.map((s) => s.length))).toBeLessThanOrEqual(70_000);
  });
});
