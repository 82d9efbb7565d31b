// An ERROR notification whose channel is down stays visible: `ccat-recovery status` shows the count
// and the oldest, the monitor's `ccat_notifications_undelivered` gauge counts it for alert rules, and
// the relay keeps retrying it past retry.maxAttempts instead of marking it failed (DESIGN §7).
import { createServer, type AddressInfo } from 'node:net';
import { countUndeliveredNotifications, createPgOutboxStore } from '@ccat/db';
import { createNotifier, createOutboxRelay } from '@ccat/notifier';
import { waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { describe, expect } from 'vitest';
import { createMonitorMetrics } from '../src/metrics.js';
import { cliTest } from './support/cli-fixture.js';
import { expectExit, parseJsonOutput } from './support/cli-process.js';

const it = cliTest('cli_undelivered', { heartbeats: false });

/** A loopback port nothing listens on (the OS picks it, then it is closed): connections are refused. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('undelivered notifications', () => {
  it('an ERROR whose mail server is down is retried past the limit and shows in status and /metrics', async ({
    f,
  }) => {
    // The CLI seed has notifications of its own; this file's schema is ours alone.
    await sql`DELETE FROM notifications`.execute(f.database.db);
    const store = createPgOutboxStore(f.database.db);
    const id = await store.enqueue({
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 'data_transfer 7 failed',
      body: 'checksum mismatch',
      context: {},
      operation: { type: 'data_transfer', id: '7', attempt: 1 },
    });
    // An older WARNING that was given up, and one that went out: only the first counts.
    await sql`INSERT INTO notifications (level, event_kind, subject, body, status, attempts, created_at)
      VALUES ('WARNING', 'stall_recovered', 'w', 'b', 'failed', 3, now() - interval '2 hours'),
             ('WARNING', 'stall_recovered', 'w', 'b', 'sent', 1, now())`.execute(f.database.db);

    const notifier = createNotifier({
      config: {
        email: {
          host: '127.0.0.1',
          port: await deadPort(),
          ignoreTLS: true,
          from: 'ccat@example.org',
          connectionTimeoutMs: 500,
          greetingTimeoutMs: 500,
          socketTimeoutMs: 500,
        },
        routes: [{ levels: ['ERROR'], email: ['ops@example.org'] }],
        retry: { baseMs: 20, maxMs: 100, maxAttempts: 2 },
        relay: { pollIntervalMs: 20, leaseMs: 2000 },
      },
    });
    const relay = createOutboxRelay({ store, notifier, relayId: 'relay-undelivered' });
    try {
      relay.start();
      const attempts = async () =>
        (
          await f.database.db
            .selectFrom('notifications')
            .select(['attempts', 'status'])
            .where('id', '=', id)
            .executeTakeFirstOrThrow()
        ).attempts;
      await waitFor(async () => (await attempts()) >= 4, {
        timeoutMs: 20_000,
        message: 'the ERROR retried past maxAttempts (2)',
      });
    } finally {
      await relay.close();
      await notifier.close();
    }
    const row = await f.database.db
      .selectFrom('notifications')
      .select(['status', 'last_error'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
    expect(row.status).toBe('pending');
    expect(row.last_error).toMatch(/SMTP server is unreachable/);

    const [text, json] = await Promise.all([f.cli('status'), f.cli('status', '--json')]);
    expectExit(text, 0);
    expect(text.stdout).toMatch(
      /^Undelivered notifications: 1 ERROR not delivered, the oldest \d+(\.\d)?m?s old$/m,
    );
    expect(text.stdout).toMatch(/^LEVEL\s+RETRYING\s+FAILED\s+OLDEST\s+OLDEST AT$/m);
    expect(text.stdout).toMatch(/^ERROR\s+1\s+0\s+\d+(\.\d)?m?s ago\s+\d{4}-\d\d-\d\dT/m);
    expect(text.stdout).toMatch(/^WARNING\s+0\s+1\s+2h( \d{1,2}m)? ago\s/m);
    expectExit(json, 0);
    expect(parseJsonOutput(json).notifications).toEqual({
      undelivered: [
        expect.objectContaining({ level: 'ERROR', pending: 1, failed: 0 }),
        expect.objectContaining({ level: 'WARNING', pending: 0, failed: 1 }),
      ],
    });

    const metrics = createMonitorMetrics({ undelivered: () => countUndeliveredNotifications(f.database.db) });
    const scraped = await metrics.registry.metrics();
    expect(scraped).toContain(
      'ccat_notifications_undelivered{level="ERROR",state="pending",app="ccat-monitor"} 1',
    );
    expect(scraped).toContain(
      'ccat_notifications_undelivered{level="ERROR",state="failed",app="ccat-monitor"} 0',
    );
    expect(scraped).toContain(
      'ccat_notifications_undelivered{level="WARNING",state="failed",app="ccat-monitor"} 1',
    );
    expect(scraped).toMatch(
      /^ccat_notifications_undelivered_oldest_seconds\{level="WARNING",app="ccat-monitor"\} 7[12]\d\d/m,
    );
  });

  it('the gauges keep their last values when PostgreSQL cannot be read, and a scrape still answers', async ({
    f,
  }) => {
    let fail = false;
    const metrics = createMonitorMetrics({
      undelivered: () =>
        fail
          ? Promise.reject(new Error('connect ECONNREFUSED'))
          : countUndeliveredNotifications(f.database.db),
    });
    const first = await metrics.registry.metrics();
    fail = true;
    await new Promise((r) => setTimeout(r, 1100));
    const second = await metrics.registry.metrics();
    const line = (s: string) =>
      s
        .split('\n')
        .find((l) =>
          l.startsWith('ccat_notifications_undelivered{level="ERROR",state="pending",app="ccat-monitor"}'),
        );
    expect(line(second)).toBe(line(first));
  });
});
