// The relay over the in-memory outbox, with a real SMTP server and a local Slack Web API.
import { waitFor, startSmtp, type TestSmtp, ERROR, captureLogs } from '@ccat/test-support';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createMemoryOutboxStore,
  createNotifier,
  createOutboxRelay,
  type MemoryOutboxStore,
  type Notifier,
  type NotifierConfigInput,
  type OutboxRelay,
  type OutboxStore,
} from '../src/index.js';
import { startFakeSlack, type FakeSlack } from './support/slack.js';

let smtp: TestSmtp;
let slack: FakeSlack;
const open: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  smtp = await startSmtp();
  slack = await startFakeSlack();
});
afterAll(async () => {
  await smtp?.close();
  await slack?.close();
});
beforeEach(() => {
  smtp.mails.length = 0;
  slack.calls.length = 0;
  slack.posted.length = 0;
  slack.behave = () => ({ kind: 'ok' });
});
afterEach(async () => {
  // Relays first, then notifiers.
  for (const r of open.splice(0).reverse()) await r.close();
});

function setup(over: Partial<NotifierConfigInput> = {}, clock?: () => number) {
  const { logger, lines } = captureLogs();
  const notifier: Notifier = createNotifier({
    config: {
      email: {
        host: '127.0.0.1',
        port: smtp.port,
        ignoreTLS: true,
        from: 'ccat@example.org',
        connectionTimeoutMs: 2000,
        greetingTimeoutMs: 2000,
        socketTimeoutMs: 2000,
      },
      slack: { token: 'xoxb-relay-memory-token', apiUrl: slack.url, timeoutMs: 2000 },
      routes: [{ levels: ['ERROR'], email: ['ops@example.org'], slack: ['#ccat-alerts'] }],
      retry: { baseMs: 20, maxMs: 200, maxAttempts: 10 },
      relay: { pollIntervalMs: 20, leaseMs: 10_000, shutdownTimeoutMs: 500 },
      dedup: { windowMs: 0 },
      ...over,
    },
    logger,
    ...(clock !== undefined && { now: clock }),
  });
  const store: MemoryOutboxStore = createMemoryOutboxStore(clock === undefined ? {} : { now: clock });
  const relay: OutboxRelay = createOutboxRelay({ store, notifier, logger, random: () => 0.5 });
  open.push(notifier, relay);
  return { notifier, store, relay, lines };
}

const failure = (i: number, dedupKey?: string) => ({
  level: 'ERROR' as const,
  eventKind: 'permanent_failure',
  subject: `data_transfer ${i} failed`,
  body: `attempt ran out for ${i}`,
  context: { errorCode: 'CHECKSUM_MISMATCH' },
  operation: { type: 'data_transfer', id: String(i), attempt: 3 },
  ...(dedupKey !== undefined && { dedupKey }),
});

describe('outbox relay (memory store)', () => {
  it('delivers every due row to its routes and records each target', async () => {
    const { store, relay } = setup();
    for (let i = 1; i <= 3; i++) await store.enqueue(failure(i));
    await store.enqueue({ level: 'INFO', eventKind: 'retry_scheduled', subject: 'retry', body: '' });
    expect(await relay.runOnce()).toMatchObject({ claimed: 4, sent: 4, failed: 0, retried: 0 });
    expect(smtp.mails.map((m) => m.subject).sort()).toEqual(
      [1, 2, 3].map((i) => `[CCAT] ERROR: data_transfer ${i} failed`),
    );
    expect(slack.posted).toHaveLength(3);
    const rows = store.rows();
    expect(rows.every((r) => r.status === 'sent')).toBe(true);
    expect(Object.keys(rows[0]!.channelResults).sort()).toEqual(['email', 'log', 'slack:#ccat-alerts']);
    expect(Object.keys(rows[3]!.channelResults)).toEqual(['log']);
    expect((await relay.runOnce()).claimed).toBe(0);
  });

  it('a Slack outage delays Slack only: the mail is not sent again', async () => {
    const { store, relay } = setup();
    let failures = 3;
    slack.behave = () => (failures-- > 0 ? { kind: 'http', status: 503 } : { kind: 'ok' });
    await store.enqueue(failure(1));
    relay.start();
    await waitFor(() => store.rows()[0]!.status === 'sent', { message: 'row sent' });
    expect(smtp.mails).toHaveLength(1);
    expect(slack.calls).toHaveLength(4);
    expect(slack.posted).toHaveLength(1);
    const results = store.rows()[0]!.channelResults;
    expect(results['email']).toMatchObject({ status: 'sent', attempts: 1 });
    expect(results['slack:#ccat-alerts']).toMatchObject({ status: 'sent', attempts: 4 });
  });

  it('bad Slack credentials fail the row for good and log an ERROR; the mail still goes, once', async () => {
    const { store, relay, lines } = setup();
    slack.behave = () => ({ kind: 'error', error: 'invalid_auth' });
    await store.enqueue(failure(1));
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, failed: 1 });
    expect(await relay.runOnce()).toMatchObject({ claimed: 0 });
    const row = store.rows()[0]!;
    expect(row.status).toBe('failed');
    expect(row.lastError).toMatch(/invalid_auth/);
    expect(row.channelResults['email']?.status).toBe('sent');
    expect(row.channelResults['slack:#ccat-alerts']).toMatchObject({
      status: 'failed',
      code: 'NOTIFY_AUTH_FAILED',
    });
    expect(smtp.mails).toHaveLength(1);
    expect(slack.calls).toHaveLength(1);
    expect(lines.some((l) => l.level === ERROR && /could not be delivered/.test(l.msg))).toBe(true);
    expect(JSON.stringify(lines)).not.toContain('xoxb-relay-memory-token');
  });

  it('after its last attempt a WARNING row is marked failed and an ERROR is logged', async () => {
    const { store, relay, lines } = setup({
      retry: { baseMs: 10, maxMs: 50, maxAttempts: 3 },
      routes: [{ levels: ['ERROR', 'WARNING'], email: ['ops@example.org'], slack: ['#ccat-alerts'] }],
    });
    slack.behave = () => ({ kind: 'http', status: 500 });
    await store.enqueue({ ...failure(1), level: 'WARNING' });
    relay.start();
    await waitFor(() => store.rows()[0]!.status === 'failed', { message: 'row failed' });
    expect(store.rows()[0]!.attempts).toBe(3);
    expect(slack.calls).toHaveLength(3);
    expect(smtp.mails).toHaveLength(1);
    expect(
      lines.some(
        (l) => l.level === ERROR && l.msg === 'notification undeliverable after 3 attempts; marked failed',
      ),
    ).toBe(true);
  });

  it('an ERROR whose channel stays down is never marked failed: past the limit it retries every maxMs', async () => {
    const { store, relay, lines } = setup({ retry: { baseMs: 10, maxMs: 400, maxAttempts: 2 } });
    slack.behave = () => ({ kind: 'http', status: 500 });
    await store.enqueue(failure(1));
    relay.start();
    await waitFor(() => slack.calls.length >= 4, { timeoutMs: 15_000, message: 'retried past the limit' });
    const row = store.rows()[0]!;
    expect(row.status).toBe('pending');
    expect(row.attempts).toBeGreaterThanOrEqual(3);
    // Past the limit the tries are spaced by the longest backoff, not the fast one.
    const at = slack.calls.map((c) => c.at);
    expect(at[3]! - at[2]!).toBeGreaterThanOrEqual(380);
    expect(
      lines.some(
        (l) =>
          l.level === ERROR &&
          /^ERROR notification still undelivered after \d+ attempts; retrying every 400ms$/.test(l.msg),
      ),
    ).toBe(true);
    slack.behave = () => ({ kind: 'ok' });
    await waitFor(() => store.rows()[0]!.status === 'sent', { message: 'sent once Slack is back' });
    expect(smtp.mails).toHaveLength(1);
  });

  it('the claim gives up a non-ERROR row whose attempts were used up by relays that never settled', async () => {
    const store = createMemoryOutboxStore();
    await store.enqueue({ ...failure(1), level: 'WARNING' });
    await store.enqueue(failure(2));
    const req = { owner: 'dead', limit: 10, leaseMs: 0, dedupWindowMs: 0, maxExamples: 0, maxAttempts: 2 };
    expect((await store.claim(req)).claimed).toHaveLength(2);
    expect((await store.claim(req)).claimed).toHaveLength(2);
    const third = await store.claim(req);
    expect(third).toMatchObject({ exhausted: 1 });
    expect(third.claimed.map((c) => c.notification.level)).toEqual(['ERROR']);
    const [warning, error] = store.rows();
    expect(warning).toMatchObject({ status: 'failed', attempts: 2 });
    expect(warning!.lastError).toMatch(/^undeliverable: delivery attempts used up, .* \(2 attempts\)/);
    expect(error).toMatchObject({ status: 'pending', attempts: 3 });
  });

  it('honours 429 Retry-After before trying Slack again', async () => {
    const { store, relay } = setup();
    let first = true;
    slack.behave = () => {
      if (!first) return { kind: 'ok' };
      first = false;
      return { kind: 'rate_limited', retryAfterS: 1 };
    };
    await store.enqueue(failure(1));
    relay.start();
    await waitFor(() => slack.posted.length === 1, { message: 'posted after the pause' });
    expect(slack.calls).toHaveLength(2);
    expect(slack.calls[1]!.at - slack.calls[0]!.at).toBeGreaterThanOrEqual(950);
    expect(smtp.mails).toHaveLength(1);
  });

  it('the per-minute cap defers the excess without counting an attempt; nothing is dropped', async () => {
    let clock = 10_000_000;
    const { store, relay } = setup(
      { slack: { token: 'xoxb-relay-memory-token', apiUrl: slack.url, maxPerMinute: 3, timeoutMs: 2000 } },
      () => clock,
    );
    for (let i = 1; i <= 5; i++) await store.enqueue(failure(i));
    expect(await relay.runOnce()).toMatchObject({ claimed: 5, sent: 3, deferred: 2 });
    expect(slack.posted).toHaveLength(3);
    expect(smtp.mails).toHaveLength(5);
    const waiting = store.rows().filter((r) => r.status === 'pending');
    expect(waiting.map((r) => r.attempts)).toEqual([0, 0]);
    expect((await relay.runOnce()).claimed).toBe(0);
    clock += 60_000;
    expect(await relay.runOnce()).toMatchObject({ claimed: 2, sent: 2 });
    expect(slack.posted).toHaveLength(5);
    expect(smtp.mails).toHaveLength(5);
  });

  it('1 000 alike events in one window: the first at once, then one mail and one Slack message that say 1000', async () => {
    let clock = 20_000_000;
    const { store, relay } = setup(
      { dedup: { windowMs: 600_000, maxExamples: 3 }, relay: { batchSize: 250 } },
      () => clock,
    );
    const key = 'permanent_failure:data_transfer:CHECKSUM_MISMATCH';
    for (let i = 1; i <= 1000; i++) {
      await store.enqueue({ ...failure(i, key), time: new Date(clock) });
      clock += 300;
    }
    let digested = 0;
    for (let pass = 0; pass < 10; pass++) digested += (await relay.runOnce()).digested;
    expect(digested).toBe(999);
    expect(smtp.mails.map((m) => m.subject)).toEqual(['[CCAT] ERROR: data_transfer 1 failed']);
    expect(slack.posted).toHaveLength(1);
    clock += 600_000;
    expect(await relay.runOnce()).toMatchObject({ claimed: 1, sent: 1 });
    expect(smtp.mails).toHaveLength(2);
    expect(slack.posted).toHaveLength(2);
    const mail = smtp.mails[1]!;
    expect(mail.subject).toBe(
      '[CCAT] ERROR: 1000 data_transfer operations failed with CHECKSUM_MISMATCH in 4m 59s',
    );
    expect(mail.text).toContain('1000 alike notifications between');
    expect(mail.text).toContain('  - data_transfer 1 (attempt 3) at');
    expect(mail.text).toContain('… and 997 more.');
    const post = slack.posted[1]!;
    expect(post.text).toBe('ERROR: 1000 data_transfer operations failed with CHECKSUM_MISMATCH in 4m 59s');
    expect(JSON.stringify(post.blocks)).toContain('1000 alike notifications');
    const rows = store.rows();
    expect(rows.filter((r) => r.status === 'digested')).toHaveLength(999);
    expect(rows.filter((r) => r.status === 'sent')).toHaveLength(2);
  });

  it('an unreachable store is logged and tried again; a failed settle is retried within the lease', async () => {
    const { store, notifier } = setup({
      relay: { pollIntervalMs: 20, leaseMs: 4000, shutdownTimeoutMs: 500 },
    });
    let claimFailures = 2;
    let settleFailures = 1;
    const flaky: OutboxStore = {
      ...store,
      claim: (r) =>
        claimFailures-- > 0 ? Promise.reject(new Error('connect ECONNREFUSED')) : store.claim(r),
      settle: (l, x) =>
        settleFailures-- > 0 ? Promise.reject(new Error('connection lost')) : store.settle(l, x),
    };
    const logs = captureLogs();
    const relay = createOutboxRelay({ store: flaky, notifier, random: () => 0.5, logger: logs.logger });
    open.push(relay);
    await store.enqueue(failure(1));
    expect(await relay.runOnce()).toMatchObject({ claimFailed: true, claimed: 0 });
    relay.start();
    await waitFor(() => store.rows()[0]!.status === 'sent', {
      timeoutMs: 15_000,
      message: 'sent after the store came back',
    });
    // The settle that failed was written on a retry, inside the lease: one attempt, one send each.
    expect(store.rows()[0]!.attempts).toBe(1);
    expect(smtp.mails).toHaveLength(1);
    expect(slack.posted).toHaveLength(1);
    const errors = logs.lines.filter((l) => l.level === ERROR).map((l) => l.msg);
    expect(errors.filter((m) => m.startsWith('outbox claim failed'))).toHaveLength(2);
    expect(logs.lines.filter((l) => l.msg.startsWith('outbox settle failed; retrying'))).toHaveLength(1);
  });

  it('a settle the store refuses until the lease ran out: the row comes back and is never sent twice', async () => {
    const { store, notifier } = setup({
      relay: { pollIntervalMs: 20, leaseMs: 4000, shutdownTimeoutMs: 500 },
    });
    let failUntil: number | undefined;
    const flaky: OutboxStore = {
      ...store,
      settle: (l, x) => {
        failUntil ??= performance.now() + 4000 + 500;
        return performance.now() < failUntil
          ? Promise.reject(new Error('connection lost'))
          : store.settle(l, x);
      },
      // The store is unreachable for the renewals too: the lease runs out.
      renew: (l, ms) =>
        failUntil !== undefined && performance.now() < failUntil
          ? Promise.reject(new Error('connection lost'))
          : store.renew(l, ms),
    };
    const logs = captureLogs();
    const relay = createOutboxRelay({ store: flaky, notifier, random: () => 0.5, logger: logs.logger });
    open.push(relay);
    await store.enqueue(failure(1));
    relay.start();
    await waitFor(() => store.rows()[0]!.status === 'sent', {
      timeoutMs: 15_000,
      message: 'sent after the store came back',
    });
    // The first settle never got through: the row came back after its lease, found both targets
    // already recorded as sent, and was settled without sending anything again.
    expect(store.rows()[0]!.attempts).toBe(2);
    expect(smtp.mails).toHaveLength(1);
    expect(slack.posted).toHaveLength(1);
    const errors = logs.lines.filter((l) => l.level === ERROR).map((l) => l.msg);
    expect(
      errors.filter((m) => m.startsWith('outbox settle not written before the lease ran out')),
    ).toHaveLength(1);
  });

  it('refuses relay overrides whose lease is too short for the channel timeouts', () => {
    const { store, notifier } = setup();
    expect(() => createOutboxRelay({ store, notifier, relay: { leaseMs: 3000 } })).toThrow(
      /^invalid outbox relay options:\nrelay\.leaseMs: email\.connectionTimeoutMs \(2000 ms\) does not fit inside relay\.leaseMs \(3000 ms\)/,
    );
    expect(() => createOutboxRelay({ store, notifier, relay: { leaseMs: 4000 } })).not.toThrow();
  });

  it('close is bounded even with a delivery hanging, safe twice, and stops the loop', async () => {
    const { store, relay } = setup({
      slack: { token: 'xoxb-relay-memory-token', apiUrl: slack.url, timeoutMs: 1000 },
      relay: { pollIntervalMs: 20, leaseMs: 10_000, shutdownTimeoutMs: 200 },
    });
    slack.behave = () => ({ kind: 'hang' });
    await store.enqueue(failure(1));
    relay.start();
    relay.start();
    await waitFor(() => slack.calls.length === 1, { message: 'slack called' });
    const t0 = Date.now();
    await relay.close();
    await relay.close();
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(await relay.runOnce()).toMatchObject({ claimed: 0 });
    await store.enqueue(failure(2));
    // The hung call times out in the background; the row is retried later, never lost.
    await waitFor(() => store.rows()[0]!.lockedBy === undefined, { message: 'settled after the timeout' });
    expect(store.rows()[0]!.status).toBe('pending');
    expect(smtp.mails).toHaveLength(1);
  });

  it('a send cut short by close goes back untried: its attempt returned, no error recorded for the abort', async () => {
    const { store, relay } = setup({
      slack: { token: 'xoxb-relay-memory-token', apiUrl: slack.url, timeoutMs: 5000 },
      relay: { pollIntervalMs: 20, leaseMs: 30_000, shutdownTimeoutMs: 2000 },
    });
    slack.behave = () => ({ kind: 'hang' });
    await store.enqueue(failure(1));
    relay.start();
    await waitFor(() => slack.calls.length === 1, { message: 'slack called' });
    await relay.close();
    const [row] = store.rows();
    expect(row).toMatchObject({ status: 'pending', attempts: 0, lastError: undefined });
    expect(row!.lockedBy).toBeUndefined();
    // The log line and the mail went before Slack hung: they are kept, and not sent again by the next relay.
    expect(Object.keys(row!.channelResults).sort()).toEqual(['email', 'log']);
    expect(smtp.mails).toHaveLength(1);
  });
});

describe('onPass', () => {
  it('reports every pass, and a throwing hook breaks nothing', async () => {
    const { createMemoryOutboxStore, createNotifier, createOutboxRelay } = await import('../src/index.js');
    const store = createMemoryOutboxStore();
    const notifier = createNotifier({ config: {} });
    const seen: number[] = [];
    const relay = createOutboxRelay({
      store,
      notifier,
      onPass: (r) => {
        seen.push(r.sent);
        throw new Error('metrics down');
      },
    });
    await store.enqueue({
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 's',
      body: 'b',
      context: {},
      time: new Date(),
    });
    const r = await relay.runOnce();
    expect(r.sent).toBe(1);
    expect(seen).toEqual([1]);
    await relay.close();
    await notifier.close();
  });
});
