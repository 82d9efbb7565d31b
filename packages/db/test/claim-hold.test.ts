// A claim transaction whose relay stops between its statements (adversary of issue 11 item 2, input
// 3: relay A frozen by SIGSTOP, or its connection silent, right after the claim's SELECT … FOR NO KEY
// UPDATE SKIP LOCKED). The session sits idle in transaction holding the row locks and every other
// relay skips the rows. Here relay A's client stops sending after that SELECT (what a frozen process
// does); its connection stays open. Relay B must get the row within about a third of the lease.
import { waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimHoldBoundMs, createDatabase, createPgOutboxStore, type PgOutboxStore } from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let t: TestDatabase;
let store: PgOutboxStore;
beforeAll(async () => {
  t = await createTestDatabase('db_claim_hold', { max: 4 });
  store = createPgOutboxStore(t.db);
});
afterAll(async () => {
  await t?.close();
});

const LEASE_MS = 3_000;

describe('a relay frozen inside its claim transaction', () => {
  it('holds the claimed rows no longer than claimHoldBoundMs: another relay then claims them', async () => {
    const id = await store.enqueue({
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 'transfer 1 failed',
      body: 'body',
      context: {},
    });
    // Relay A's pool: after the claim's row-locking SELECT has its answer, the client sends nothing
    // more (every later statement on it waits for ever, as in a frozen process).
    const raw = new pg.Pool({ connectionString: t.url, max: 1, options: `-c search_path=${t.schema}` });
    raw.on('error', () => undefined);
    let frozen: pg.PoolClient | undefined;
    let lockedSelectAnswered = false;
    const freezing = {
      async connect() {
        const client = await raw.connect();
        client.on('error', () => undefined);
        const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
        (client as { query: unknown }).query = async (...args: unknown[]) => {
          if (lockedSelectAnswered) {
            frozen = client;
            return new Promise(() => undefined);
          }
          const r = await query(...args);
          if (typeof args[0] === 'string' && args[0].includes('FOR NO KEY UPDATE SKIP LOCKED'))
            lockedSelectAnswered = true;
          return r;
        };
        return client;
      },
      end: () => Promise.resolve(),
    };
    const relayA = createPgOutboxStore(createDatabase({ pool: freezing }).db);
    const claimA = relayA.claim({
      owner: 'relay-a',
      limit: 10,
      leaseMs: LEASE_MS,
      dedupWindowMs: 0,
      maxExamples: 3,
    });
    claimA.catch(() => undefined);
    try {
      await waitFor(() => frozen !== undefined, {
        timeoutMs: 10_000,
        message: 'relay A froze after its SELECT',
      });
      // Relay B keeps polling; it must get the row once A's transaction is ended by the server.
      const started = performance.now();
      let claimedByB = false;
      const deadline = started + 4 * claimHoldBoundMs(LEASE_MS) + 5_000;
      while (!claimedByB && performance.now() < deadline) {
        const r = await store.claim({
          owner: 'relay-b',
          limit: 10,
          leaseMs: LEASE_MS,
          dedupWindowMs: 0,
          maxExamples: 3,
        });
        claimedByB = r.claimed.some((c) => c.lease.id === id);
        if (!claimedByB) await new Promise((r) => setTimeout(r, 100));
      }
      expect(claimedByB).toBe(true);
      const { rows } = await sql<{ locked_by: string; attempts: number }>`
        SELECT locked_by, attempts FROM notifications WHERE id = ${id}`.execute(t.db);
      // A's claim never committed: B's is the first attempt.
      expect(rows[0]!.locked_by).toMatch(/^relay-b:/);
      expect(rows[0]!.attempts).toBe(1);
    } finally {
      (frozen as unknown as { connection?: { stream?: { destroy(): void } } })?.connection?.stream?.destroy();
      frozen?.release(true);
      await raw.end().catch(() => undefined);
    }
  }, 60_000);
});
