// A PostgreSQL outage right after the SMTP server took a mail (adversary of issue 11 item 2, input 1):
// the relay's write of the channel result failed once and the relay gave the row up although its lease
// was good for seconds more; on expiry it claimed the row again and mailed it twice. The relay must
// retry the write while its lease holds. A private PostgreSQL of this test's own is stopped at the
// moment the SMTP server has the whole message (before its 250) and started again a moment later.
import { createDatabase, createPgOutboxStore, migrateToLatest, type CcatDatabase } from '@ccat/db';
import { PrivatePostgres, waitFor, startSmtp, type TestSmtp, captureLogs } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifier, createOutboxRelay } from '../src/index.js';

let server: PrivatePostgres;
let database: CcatDatabase;
beforeAll(async () => {
  server = await PrivatePostgres.start();
  database = createDatabase({ connectionString: server.url, max: 4, statementTimeoutMs: 2_000 });
  await migrateToLatest(database.db);
}, 90_000);
afterAll(async () => {
  await database?.close();
  await server?.destroy();
});

const LEASE_MS = 10_000;

describe('a PostgreSQL outage after the SMTP server accepted the mail', () => {
  it('records the result once PostgreSQL is back, within the lease, and sends the mail once', async () => {
    let outage: Promise<void> | undefined;
    const smtp: TestSmtp = await startSmtp({
      beforeAccept: async () => {
        if (outage !== undefined) return;
        // PostgreSQL goes away before the 250 reaches the relay, and comes back about a second later.
        await server.stop();
        outage = new Promise((r) => setTimeout(r, 500)).then(() => server.spawn());
      },
    });
    const notifier = createNotifier({
      config: {
        email: {
          host: '127.0.0.1',
          port: smtp.port,
          ignoreTLS: true,
          from: 'ccat@example.org',
          connectionTimeoutMs: 2000,
          greetingTimeoutMs: 2000,
          socketTimeoutMs: 2000,
          maxPerMinute: 10_000,
        },
        routes: [{ levels: ['ERROR'], email: ['ops@example.org'] }],
        retry: { baseMs: 200, maxMs: 1000, maxAttempts: 12 },
        relay: {
          pollIntervalMs: 100,
          batchSize: 10,
          leaseMs: LEASE_MS,
          concurrency: 2,
          shutdownTimeoutMs: 5000,
        },
        dedup: { windowMs: 0 },
      },
    });
    const store = createPgOutboxStore(database.db);
    const logs = captureLogs();
    const relay = createOutboxRelay({ store, notifier, relayId: 'relay-blip', logger: logs.logger });
    try {
      const id = await store.enqueue({
        level: 'ERROR',
        eventKind: 'permanent_failure',
        subject: 'data_transfer 1 failed',
        body: 'checksum mismatch',
        context: {},
      });
      relay.start();
      await waitFor(() => outage !== undefined, {
        timeoutMs: 20_000,
        message: 'the mail reached the server',
      });
      await outage;
      // Sent and settled, and no second claim after the first lease would have lapsed.
      const row = () =>
        database.db
          .selectFrom('notifications')
          .select(['status', 'attempts'])
          .where('id', '=', id)
          .executeTakeFirst();
      await waitFor(async () => (await row().catch(() => undefined))?.status === 'sent', {
        timeoutMs: 3 * LEASE_MS,
        intervalMs: 100,
        message: 'notification settled as sent',
      });
      expect((await row())?.attempts).toBe(1);
      expect(smtp.mails.filter((m) => m.headers.get('x-ccat-notification-id') === id)).toHaveLength(1);
    } finally {
      await relay.close();
      await notifier.close();
      await smtp.close();
    }
  }, 90_000);
});
