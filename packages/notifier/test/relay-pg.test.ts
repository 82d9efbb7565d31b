// The relay over the PostgreSQL outbox (@ccat/db's store, a schema of this file's own), with a real
// SMTP server and a local Slack Web API.
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
  type OutboxStore,
} from '../src/index.js';
import { startFakeSlack, type FakeSlack } from './support/slack.js';

let t: TestDatabase;
/** Typed as the notifier's interface: this line is the compile-time check that the db store fits it. */
let store: OutboxStore;
let smtp: TestSmtp;
let slack: FakeSlack;
const open: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  t = await createTestDatabase('notifier_relay_pg', { max: 8 });
  store = createPgOutboxStore(t.db);
  smtp = await startSmtp();
  slack = await startFakeSlack();
});
afterAll(async () => {
  await smtp?.close();
  await slack?.close();
  await t?.close();
});
beforeEach(async () => {
  smtp.mails.length = 0;
  slack.calls.length = 0;
  slack.posted.length = 0;
  slack.behave = () => ({ kind: 'ok' });
  await t.db.deleteFrom('notifications').execute();
});
afterEach(async () => {
  for (const r of open.splice(0).reverse()) await r.close();
});

function makeNotifier(over: Partial<NotifierConfigInput> = {}): Notifier {
  const notifier = createNotifier({
    config: {
      email: {
        host: '127.0.0.1',
        port: smtp.port,
        ignoreTLS: true,
        from: 'ccat@example.org',
        connectionTimeoutMs: 1000,
        greetingTimeoutMs: 2000,
        socketTimeoutMs: 2000,
        maxPerMinute: 10_000,
      },
      slack: { token: 'xoxb-relay-pg-token', apiUrl: slack.url, timeoutMs: 2000, maxPerMinute: 10_000 },
      routes: [{ levels: ['ERROR'], email: ['ops@example.org'], slack: ['#ccat-alerts'] }],
      retry: { baseMs: 50, maxMs: 300, maxAttempts: 100 },
      relay: { pollIntervalMs: 25, batchSize: 20, leaseMs: 10_000, concurrency: 4, shutdownTimeoutMs: 2000 },
      dedup: { windowMs: 0 },
      ...over,
    },
  });
  open.push(notifier);
  return notifier;
}

function makeRelay(notifier: Notifier, relayId: string, logger = captureLogs().logger): OutboxRelay {
  const relay = createOutboxRelay({ store: store, notifier, relayId, logger });
  open.push(relay);
  return relay;
}

const failure = (i: number, dedupKey?: string) => ({
  level: 'ERROR' as const,
  eventKind: 'permanent_failure',
  subject: `data_transfer ${i} failed`,
  body: `checksum mismatch on ${i}`,
  context: { errorCode: 'CHECKSUM_MISMATCH' },
  operation: { type: 'data_transfer', id: String(i), attempt: 2 },
  ...(dedupKey !== undefined && { dedupKey }),
});

const statuses = async () => {
  const rows = await t.db.selectFrom('notifications').select(['status']).execute();
  const counts: Record<string, number> = {};
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
};

const ids = (mails: TestSmtp['mails']) => mails.map((m) => m.headers.get('x-ccat-notification-id'));

describe('outbox relay (PostgreSQL store)', () => {
  it('two relays on one outbox deliver each notification exactly once', async () => {
    const enqueued = await Promise.all(Array.from({ length: 60 }, (_, i) => store.enqueue(failure(i + 1))));
    const notifier = makeNotifier({ relay: { pollIntervalMs: 25, batchSize: 7, concurrency: 3 } });
    const logsA = captureLogs();
    const logsB = captureLogs();
    const a = makeRelay(notifier, 'relay-a', logsA.logger);
    const b = makeRelay(notifier, 'relay-b', logsB.logger);
    a.start();
    b.start();
    await waitFor(async () => (await statuses())['sent'] === 60, {
      timeoutMs: 20_000,
      message: 'all 60 sent',
    });
    expect(smtp.mails).toHaveLength(60);
    expect(new Set(ids(smtp.mails))).toEqual(new Set(enqueued));
    expect(slack.posted).toHaveLength(60);
    expect(new Set(slack.posted.map((c) => c.text)).size).toBe(60);
    const claimedBy = (lines: ReturnType<typeof captureLogs>['lines']) =>
      lines.filter((l) => l.msg === 'outbox pass').reduce((n, l) => n + Number(l['claimed']), 0);
    expect(claimedBy(logsA.lines)).toBeGreaterThan(0);
    expect(claimedBy(logsB.lines)).toBeGreaterThan(0);
    expect(claimedBy(logsA.lines) + claimedBy(logsB.lines)).toBe(60);
    const rows = await t.db
      .selectFrom('notifications')
      .select(['locked_by', 'sent_at', 'attempts'])
      .execute();
    expect(rows.every((r) => r.locked_by === null && r.sent_at instanceof Date && r.attempts === 1)).toBe(
      true,
    );
  });

  it('SMTP down for a while: every mail arrives after it comes back, none twice, and Slack is not held up', async () => {
    await smtp.stop();
    try {
      const enqueued = await Promise.all(Array.from({ length: 10 }, (_, i) => store.enqueue(failure(i + 1))));
      makeRelay(makeNotifier(), 'relay-outage').start();
      await waitFor(() => slack.posted.length === 10, { message: 'Slack delivered during the mail outage' });
      await waitFor(
        async () => {
          const rows = await t.db
            .selectFrom('notifications')
            .select(['attempts', 'channel_results'])
            .execute();
          return rows.every(
            (r) =>
              r.attempts >= 2 &&
              (r.channel_results as { email?: { status: string } }).email?.status === 'retrying',
          );
        },
        { message: 'mail retried while the server is down' },
      );
      expect(await statuses()).toEqual({ pending: 10 });
      await smtp.start();
      await waitFor(async () => (await statuses())['sent'] === 10, {
        timeoutMs: 15_000,
        message: 'all sent',
      });
      expect(smtp.mails).toHaveLength(10);
      expect(new Set(ids(smtp.mails))).toEqual(new Set(enqueued));
      expect(slack.posted).toHaveLength(10);
      expect(slack.calls).toHaveLength(10);
    } finally {
      await smtp.start().catch(() => undefined);
    }
  });

  it('1 000 alike events in one window: the first at once, then one mail and one Slack message that say 1000', async () => {
    const key = 'permanent_failure:data_transfer:CHECKSUM_MISMATCH';
    await t.db
      .insertInto('notifications')
      .values(
        Array.from({ length: 1000 }, (_, i) => ({
          level: 'ERROR' as const,
          event_kind: 'permanent_failure',
          subject: `data_transfer ${i + 1} failed`,
          body: 'checksum mismatch',
          context: JSON.stringify({ errorCode: 'CHECKSUM_MISMATCH', attempt: 2 }),
          dedup_key: key,
          operation_type: 'data_transfer',
          operation_id: String(i + 1),
        })),
      )
      .execute();
    const notifier = makeNotifier({
      dedup: { windowMs: 2500, maxExamples: 3 },
      relay: { pollIntervalMs: 25, batchSize: 200, concurrency: 4 },
    });
    makeRelay(notifier, 'relay-1').start();
    makeRelay(notifier, 'relay-2').start();
    await waitFor(
      async () => (await statuses())['digested'] === 999 && smtp.mails.length > 0 && slack.posted.length > 0,
      { message: 'the first sent, the rest folded into the digest' },
    );
    // With two relays claiming at once, "first" is the first row either of them decided on.
    expect(smtp.mails.map((m) => m.subject)).toEqual([
      expect.stringMatching(/^\[CCAT\] ERROR: data_transfer \d+ failed$/),
    ]);
    expect(slack.posted).toHaveLength(1);
    await waitFor(async () => (await statuses())['sent'] === 2, {
      timeoutMs: 15_000,
      message: 'digest sent',
    });
    expect(smtp.mails).toHaveLength(2);
    expect(slack.posted).toHaveLength(2);
    const digest = smtp.mails[1]!;
    expect(digest.subject).toMatch(
      /^\[CCAT\] ERROR: 1000 data_transfer operations failed with CHECKSUM_MISMATCH in \d+m?s$/,
    );
    expect(digest.text).toContain('1000 alike notifications between');
    expect(digest.text).toContain('  - data_transfer 1 (attempt 2) at');
    expect(digest.text).toContain('… and 997 more.');
    expect(slack.posted[1]!.text).toMatch(
      /^ERROR: 1000 data_transfer operations failed with CHECKSUM_MISMATCH/,
    );
    // Nothing is left pending, so nothing else can go out.
    expect(await statuses()).toEqual({ sent: 2, digested: 999 });
  });

  it("a crashed relay's rows come back when its lease lapses, and are delivered once", async () => {
    for (let i = 1; i <= 3; i++) await store.enqueue(failure(i));
    const crashed = await store.claim({
      owner: 'crashed',
      limit: 10,
      leaseMs: 400,
      dedupWindowMs: 0,
      maxExamples: 0,
    });
    expect(crashed.claimed).toHaveLength(3);
    const relay = makeRelay(makeNotifier(), 'relay-survivor');
    expect((await relay.runOnce()).claimed).toBe(0);
    relay.start();
    await waitFor(async () => (await statuses())['sent'] === 3, { message: 'delivered after the lease' });
    expect(smtp.mails).toHaveLength(3);
    expect(slack.posted).toHaveLength(3);
    expect(await store.settle(crashed.claimed[0]!.lease, { kind: 'sent' })).toBe(false);
  });

  it('hostile content arrives inert through the outbox', async () => {
    await store.enqueue({
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 'copy failed <!channel>\r\nBcc: thief@example.net',
      body: `rsync postgres://ccat:db-secret-1@db/ops <@U999> <!here>\n${'#'.repeat(40_000)}`,
      context: {
        errorMessage: 'token=xoxp-1234567890-abcdef',
        password: 'hunter2',
        where: '<https://evil|x>',
      },
      operation: { type: 'data_transfer', id: '5', attempt: 1 },
    });
    const relay = makeRelay(makeNotifier(), 'relay-hostile');
    expect(await relay.runOnce()).toMatchObject({ sent: 1 });
    const mail = smtp.mails[0]!;
    expect(mail.envelopeTo).toEqual(['ops@example.org']);
    expect(mail.headers.has('bcc')).toBe(false);
    expect(mail.raw).not.toMatch(/db-secret-1|hunter2|xoxp-1234567890/);
    expect(mail.text).toMatch(/…\[truncated \d+ chars\]/);
    const raw = decodeURIComponent(slack.posted[0]!.rawBody.replace(/\+/g, ' '));
    expect(raw).not.toMatch(/<!|<@|<https?:|db-secret-1|hunter2|xoxp-1234567890/);
  });
});
