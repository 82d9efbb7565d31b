// /metrics while PostgreSQL stops answering (adversary of issue 11 item 2, input 4): the gauges'
// collect waited on the database with no deadline, so every monitor metric was lost and the
// undelivered-notification alert resolved by itself. A private PostgreSQL of this test's own is
// frozen (SIGSTOP); a scrape must answer within its deadline with the last values and say the read
// failed.
import {
  countUndeliveredNotifications,
  createDatabase,
  createPgOutboxStore,
  migrateToLatest,
  type CcatDatabase,
} from '@ccat/db';
import { PrivatePostgres } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMonitorMetrics } from '../src/metrics.js';

let server: PrivatePostgres;
let database: CcatDatabase;
beforeAll(async () => {
  server = await PrivatePostgres.start();
  database = createDatabase({ connectionString: server.url, max: 2 });
  await migrateToLatest(database.db);
}, 90_000);
afterAll(async () => {
  server?.resume();
  await database?.close();
  await server?.destroy();
});

/** The scrape's text, or 'hung' after `ms`. */
async function scrape(registry: { metrics(): Promise<string> }, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      registry.metrics(),
      new Promise<string>((r) => (timer = setTimeout(() => r('hung'), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const line = (text: string, prefix: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(prefix));

describe('/metrics over a frozen PostgreSQL', () => {
  it('answers within the read deadline, keeps the last values and counts the failed read', async () => {
    await createPgOutboxStore(database.db).enqueue({
      level: 'ERROR',
      eventKind: 'permanent_failure',
      subject: 'data_transfer 1 failed',
      body: 'x',
      context: {},
    });
    const metrics = createMonitorMetrics({
      undelivered: () => countUndeliveredNotifications(database.db),
      readTimeoutMs: 1000,
    });
    const pending = 'ccat_notifications_undelivered{level="ERROR",state="pending",app="ccat-monitor"}';
    const first = await scrape(metrics.registry, 20_000);
    expect(line(first, pending)).toBe(`${pending} 1`);
    const readAt = line(first, 'ccat_notifications_undelivered_read_timestamp_seconds{app="ccat-monitor"} ');
    server.pause();
    try {
      for (const round of [1, 2]) {
        await new Promise((r) => setTimeout(r, 1100)); // past the 1 s cache of a good read
        const text = await scrape(metrics.registry, 10_000);
        expect(text).not.toBe('hung');
        expect(line(text, pending)).toBe(`${pending} 1`);
        expect(Number(readAt?.split(' ')[1])).toBeGreaterThan(0);
        expect(line(text, 'ccat_notifications_undelivered_read_timestamp_seconds{app="ccat-monitor"} ')).toBe(
          readAt,
        );
        expect(
          line(
            text,
            'ccat_notifications_undelivered_read_failures_total{reason="timeout",app="ccat-monitor"}',
          ),
        ).toBe(
          `ccat_notifications_undelivered_read_failures_total{reason="timeout",app="ccat-monitor"} ${round}`,
        );
      }
    } finally {
      server.resume();
    }
  }, 60_000);
});
