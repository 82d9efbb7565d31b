// Outbox delivery bounded by its lease, under several relays: a slow or hung SMTP server, a relay
// that dies mid-delivery, over the real PostgreSQL outbox (@ccat/db) and a real SMTP server.
import { createPgOutboxStore } from '@ccat/db';
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { waitFor, startSmtp, type TestSmtp, captureLogs } from '@ccat/test-support';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createNotifier,
  createOutboxRelay,
  type Notifier,
  type NotifierConfigInput,
  type OutboxRelay,
} from '../src/index.js';
import type { Logger } from 'pino';
import type { OutboxStore } from '../src/index.js';

let t: TestDatabase;
/** Typed as the notifier's interface: this line is the compile-time check that the db store fits it. */
let store: OutboxStore;
const open: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  t = await createTestDatabase('notifier_relay_lease', { max: 8 });
  store = createPgOutboxStore(t.db);
});
afterAll(async () => {
  await t?.close();
});
beforeEach(async () => {
  await t.db.deleteFrom('notifications').execute();
});
afterEach(async () => {
  for (const r of open.splice(0).reverse()) await r.close();
});

async function smtpServer(options: Parameters<typeof startSmtp>[0]): Promise<TestSmtp> {
  const smtp = await startSmtp(options);
  open.push(smtp);
  return smtp;
}

/** The shipped defaults' ratios, scaled down: lease 4 s, every SMTP timeout 1 s. */
function makeNotifier(smtp: TestSmtp, over: Partial<NotifierConfigInput> = {}): Notifier {
  const notifier = createNotifier({
    config: {
      email: {
        host: '127.0.0.1',
        port: smtp.port,
        ignoreTLS: true,
        from: 'ccat@example.org',
        connectionTimeoutMs: 1000,
        greetingTimeoutMs: 1000,
        socketTimeoutMs: 1000,
        maxPerMinute: 10_000,
      },
      routes: [{ levels: ['ERROR', 'WARNING'], email: ['ops@example.org'] }],
      retry: { baseMs: 200, maxMs: 1000, maxAttempts: 12 },
      relay: { pollIntervalMs: 50, batchSize: 10, leaseMs: 4000, concurrency: 4, shutdownTimeoutMs: 5000 },
      dedup: { windowMs: 0 },
      ...over,
    },
  });
  open.push(notifier);
  return notifier;
}

function makeRelay(
  notifier: Notifier,
  relayId: string,
  options: { store?: OutboxStore; logger?: Logger } = {},
): OutboxRelay {
  const relay = createOutboxRelay({
    store: options.store ?? store,
    notifier,
    relayId,
    logger: options.logger ?? captureLogs().logger,
  });
  open.push(relay);
  return relay;
}

/** Every session ended, none lasted `maxMs` or more, and no two overlapped (one sender at a time). */
function expectOneSenderAtATime(smtp: TestSmtp, maxMs: number): void {
  const sessions = smtp.sessions;
  for (const [i, s] of sessions.entries()) {
    expect(s.closedAt, `session ${i} closed`).toBeDefined();
    expect(s.closedAt! - s.openedAt, `session ${i} length`).toBeLessThan(maxMs);
    if (i > 0)
      expect(s.openedAt, `session ${i} starts after ${i - 1} ended`).toBeGreaterThanOrEqual(
        sessions[i - 1]!.closedAt!,
      );
  }
}

const failure = (i: number, level: 'ERROR' | 'WARNING' = 'ERROR') => ({
  level,
  eventKind: 'permanent_failure',
  subject: `data_transfer ${i} failed`,
  body: `checksum mismatch on ${i}`,
  context: { errorCode: 'CHECKSUM_MISMATCH' },
  operation: { type: 'data_transfer', id: String(i), attempt: 2 },
});

const rowsNow = () =>
  t.db.selectFrom('notifications').select(['id', 'status', 'attempts', 'locked_by']).orderBy('id').execute();

const mailsOf = (smtp: TestSmtp, id: string) =>
  smtp.mails.filter((m) => m.headers.get('x-ccat-notification-id') === id).length;

describe('outbox delivery bounded by the lease', () => {
  it('two relays and an SMTP server that answers every command after 700 ms: each notification mailed once', async () => {
    const smtp = await smtpServer({ replyDelayMs: 700, pipelining: false });
    const ids = [await store.enqueue(failure(1)), await store.enqueue(failure(2, 'WARNING'))];
    makeRelay(makeNotifier(smtp), 'relay-a').start();
    makeRelay(makeNotifier(smtp), 'relay-b').start();
    let maxAttempts = 0;
    const watch = async () => {
      const rows = await rowsNow();
      maxAttempts = Math.max(maxAttempts, ...rows.map((r) => r.attempts));
      return rows;
    };
    // Stop waiting as soon as both are sent, or a notification was mailed twice (today's fault).
    await waitFor(
      async () => (await watch()).every((r) => r.status === 'sent') || smtp.mails.length > ids.length,
      { timeoutMs: 30_000, intervalMs: 100, message: 'both notifications marked sent' },
    );
    // Keep both relays running for three more leases: nothing may go out again.
    const until = Date.now() + 12_000;
    while (Date.now() < until) {
      await watch();
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const id of ids) expect(mailsOf(smtp, id), `mails of notification ${id}`).toBe(1);
    expect(smtp.mails).toHaveLength(2);
    expect(maxAttempts).toBeLessThanOrEqual(12);
    expect(await rowsNow()).toEqual(ids.map((id) => expect.objectContaining({ id, status: 'sent' })));
  }, 60_000);

  it('a relay that loses its lease mid-send aborts the send and records nothing', async () => {
    const smtp = await smtpServer({ replyDelayMs: 700, pipelining: false });
    const id = await store.enqueue(failure(1));
    const logs = captureLogs();
    makeRelay(makeNotifier(smtp), 'relay-robbed', { logger: logs.logger }).start();
    await waitFor(() => smtp.sessions.length === 1, { message: 'the send started' });
    // Another relay takes the row over (as a claim after a lapsed lease would).
    await t.db.updateTable('notifications').set({ locked_by: 'thief:1' }).where('id', '=', id).execute();
    await waitFor(() => smtp.sessions[0]!.closedAt !== undefined, {
      timeoutMs: 4000,
      message: 'the SMTP connection closed at the next renewal',
    });
    expect(smtp.mails).toHaveLength(0);
    expect(logs.lines.some((l) => l.msg.startsWith('outbox lease lost during a send'))).toBe(true);
    const row = await t.db
      .selectFrom('notifications')
      .select(['status', 'locked_by', 'channel_results', 'attempts'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'pending', locked_by: 'thief:1', channel_results: {}, attempts: 1 });
  });

  it('renewals that cannot reach the store: the send is aborted at the lease deadline, before the lease lapses', async () => {
    const smtp = await smtpServer({ replyDelayMs: 700, pipelining: false });
    await store.enqueue(failure(1));
    const logs = captureLogs();
    // PostgreSQL answers claims and settles but every renewal hangs (a stalled connection).
    const stalled: OutboxStore = { ...store, renew: () => new Promise<never>(() => undefined) };
    makeRelay(makeNotifier(smtp), 'relay-stalled', { store: stalled, logger: logs.logger }).start();
    makeRelay(makeNotifier(smtp), 'relay-stalled-2', { store: stalled, logger: logs.logger }).start();
    await waitFor(() => smtp.sessions.filter((x) => x.closedAt !== undefined).length >= 3, {
      timeoutMs: 30_000,
      message: 'three attempts, each aborted',
    });
    // Each send (4.2 s of replies) was cut at 80 % of the 4 s lease: none overlapped another relay's.
    expectOneSenderAtATime(
      { ...smtp, sessions: smtp.sessions.filter((x) => x.closedAt !== undefined) },
      4000,
    );
    expect(smtp.mails).toHaveLength(0);
    expect(
      logs.lines.some((l) => l.msg === 'outbox lease about to lapse without renewal; aborting its sends'),
    ).toBe(true);
    const [row] = await rowsNow();
    expect(row).toMatchObject({ status: 'pending' });
    expect(row!.attempts).toBeLessThanOrEqual(12);
  }, 60_000);

  it('an SMTP server that takes DATA and never answers: each try ends inside its lease, one relay at a time, and is retried', async () => {
    const smtp = await smtpServer({ hangAfterData: true });
    const id = await store.enqueue(failure(1));
    makeRelay(makeNotifier(smtp, { email: hungEmail(smtp) }), 'relay-h1').start();
    makeRelay(makeNotifier(smtp, { email: hungEmail(smtp) }), 'relay-h2').start();
    await waitFor(() => smtp.sessions.filter((x) => x.closedAt !== undefined).length >= 3, {
      timeoutMs: 30_000,
      message: 'three tries ended',
    });
    expectOneSenderAtATime(
      { ...smtp, sessions: smtp.sessions.filter((x) => x.closedAt !== undefined) },
      4000,
    );
    const row = await t.db
      .selectFrom('notifications')
      .select(['status', 'attempts', 'channel_results'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
    expect(row.attempts).toBeGreaterThanOrEqual(3);
    expect(row.attempts).toBeLessThanOrEqual(12);
    expect((row.channel_results as Record<string, { status: string; code: string }>)['email']).toMatchObject({
      status: 'retrying',
      code: 'NOTIFY_UNAVAILABLE',
    });
  }, 60_000);

  it('a relay dropped mid-delivery: its rows come back after about one lease and are delivered once', async () => {
    const smtp = await smtpServer({});
    const ids = [await store.enqueue(failure(1)), await store.enqueue(failure(2))];
    // A relay claims with the 4 s lease, then dies without settling (nothing renews its lease).
    const claimedAt = Date.now();
    const dead = await store.claim({
      owner: 'relay-dead',
      limit: 10,
      leaseMs: 4000,
      dedupWindowMs: 0,
      maxExamples: 0,
      maxAttempts: 12,
    });
    expect(dead.claimed).toHaveLength(2);
    makeRelay(makeNotifier(smtp), 'relay-survivor').start();
    await waitFor(() => smtp.mails.length === 2, { timeoutMs: 15_000, message: 'delivered by the survivor' });
    const tookMs = Date.now() - claimedAt;
    expect(tookMs).toBeGreaterThanOrEqual(3900);
    expect(tookMs).toBeLessThan(4000 + 3000);
    await waitFor(async () => (await rowsNow()).every((r) => r.status === 'sent'), { message: 'settled' });
    for (const id of ids) expect(mailsOf(smtp, id)).toBe(1);
    // The dead relay, were it to wake up, holds nothing: no renewal, no settle.
    expect(
      await store.renew(
        dead.claimed.map((c) => c.lease),
        4000,
      ),
    ).toEqual([]);
    expect(await store.settle(dead.claimed[0]!.lease, { kind: 'sent' })).toBe(false);
  }, 30_000);

  it('attempts used up by relays that never settled: a WARNING is marked failed by the claim, an ERROR stays and is retried', async () => {
    const smtp = await smtpServer({});
    const warning = await store.enqueue(failure(1, 'WARNING'));
    const error = await store.enqueue(failure(2));
    await t.db.updateTable('notifications').set({ attempts: 12 }).execute();
    makeRelay(makeNotifier(smtp), 'relay-limit').start();
    await waitFor(async () => (await rowsNow()).every((r) => r.status !== 'pending'), {
      message: 'both decided',
    });
    const rows = await t.db
      .selectFrom('notifications')
      .select(['id', 'status', 'attempts', 'last_error'])
      .orderBy('id')
      .execute();
    expect(rows).toEqual([
      expect.objectContaining({ id: warning, status: 'failed', attempts: 12 }),
      expect.objectContaining({ id: error, status: 'sent', attempts: 13 }),
    ]);
    expect(rows[0]!.last_error).toMatch(/^undeliverable: delivery attempts used up/);
    expect(mailsOf(smtp, warning)).toBe(0);
    expect(mailsOf(smtp, error)).toBe(1);
  });
});

function hungEmail(smtp: TestSmtp): NotifierConfigInput['email'] {
  return {
    host: '127.0.0.1',
    port: smtp.port,
    ignoreTLS: true,
    from: 'ccat@example.org',
    connectionTimeoutMs: 1000,
    greetingTimeoutMs: 1000,
    socketTimeoutMs: 2000,
    maxPerMinute: 10_000,
  };
}
