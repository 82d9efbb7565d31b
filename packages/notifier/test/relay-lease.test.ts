// Outbox delivery bounded by its lease, under several relays: a slow or hung SMTP server, a relay
// that dies mid-delivery, over the real PostgreSQL outbox (@ccat/db) and a real SMTP server.
import { waitFor } from '@ccat/test-support';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createNotifier,
  createOutboxRelay,
  type Notifier,
  type NotifierConfigInput,
  type OutboxRelay,
} from '../src/index.js';
import { captureLogs } from './support/logs.js';
import { setupOutboxDb, type OutboxDb } from './support/outbox-db.js';
import { startSmtp, type TestSmtp } from './support/smtp.js';

let t: OutboxDb;
const open: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  t = await setupOutboxDb('notifier_relay_lease');
});
afterAll(async () => {
  await t?.teardown();
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
      retry: { baseDelayMs: 200, maxDelayMs: 1000, maxAttempts: 12 },
      relay: { pollIntervalMs: 50, batchSize: 10, leaseMs: 4000, concurrency: 4, shutdownTimeoutMs: 5000 },
      dedup: { windowMs: 0 },
      ...over,
    },
  });
  open.push(notifier);
  return notifier;
}

function makeRelay(notifier: Notifier, relayId: string): OutboxRelay {
  const relay = createOutboxRelay({ store: t.store, notifier, relayId, logger: captureLogs().logger });
  open.push(relay);
  return relay;
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
    const ids = [await t.store.enqueue(failure(1)), await t.store.enqueue(failure(2, 'WARNING'))];
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
});
