// A relay whose PostgreSQL connections go silent (adversary of issue 11 item 2, input 2: the server
// side stops answering on them, new connections work at once). Without a client-side bound the
// relay's claim waited for ever: it never delivered again and logged nothing. With the service
// pool's statement bound, its statements fail, their connections are dropped, and it delivers again.
import { createDatabase, createPgOutboxStore } from '@ccat/db';
import { createTestDatabase } from '@ccat/db/testing';
import { waitFor, startSmtp, captureLogs } from '@ccat/test-support';
import { describe, expect, it } from 'vitest';
import { createNotifier, createOutboxRelay } from '../src/index.js';
import { startSilencingProxy } from './support/silencing-proxy.js';

const note = (i: number) => ({
  level: 'ERROR' as const,
  eventKind: 'permanent_failure',
  subject: `data_transfer ${i} failed`,
  body: 'x',
  context: {},
});

describe('a relay whose PostgreSQL connections go silent', () => {
  it('gets an error within the statement bound, drops those connections and delivers again', async () => {
    const direct = await createTestDatabase('notifier_relay_silent', { max: 2 });
    const proxy = await startSilencingProxy(direct.url);
    // The relay's pool as a service opens it (openServiceDatabase): bounded statements.
    const relayDb = createDatabase({
      connectionString: proxy.url,
      schema: direct.schema,
      max: 2,
      statementTimeoutMs: 1_000,
      connectTimeoutMs: 1_000,
    });
    const smtp = await startSmtp();
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
        routes: [{ levels: ['ERROR'], email: ['ops@example.org'] }],
        retry: { baseMs: 100, maxMs: 500, maxAttempts: 12 },
        relay: { pollIntervalMs: 100, batchSize: 10, leaseMs: 3000, concurrency: 2, shutdownTimeoutMs: 3000 },
        dedup: { windowMs: 0 },
      },
    });
    const logs = captureLogs();
    const relay = createOutboxRelay({
      store: createPgOutboxStore(relayDb.db),
      notifier,
      relayId: 'relay-silent',
      logger: logs.logger,
    });
    const sentTo = (id: string) => smtp.mails.filter((m) => m.headers.get('x-ccat-notification-id') === id);
    try {
      const store = createPgOutboxStore(direct.db);
      const first = await store.enqueue(note(1));
      relay.start();
      await waitFor(() => sentTo(first).length === 1, { timeoutMs: 20_000, message: 'first delivered' });
      proxy.silenceAll();
      const second = await store.enqueue(note(2));
      const t0 = performance.now();
      let delivered = false;
      while (!delivered && performance.now() - t0 < 30_000) {
        delivered = sentTo(second).length === 1;
        if (!delivered) await new Promise((r) => setTimeout(r, 100));
      }
      expect(delivered).toBe(true);
    } finally {
      await relay.close();
      await notifier.close();
      await smtp.close();
      await relayDb.close();
      await proxy.close();
      await direct.close();
    }
  }, 90_000);
});
