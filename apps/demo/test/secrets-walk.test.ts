// Walk every sink (issue 12, items 5, 6 and 9): an error carrying each common form of a secret,
// a NUL byte, a lone surrogate and megabytes of text is thrown by a real worker task (worker
// process, fault rule), recorded by the real transitions, reported by the real monitor's relay
// (SMTP and Slack's Web API on 127.0.0.1) and listed by the CLI. Then every sink is searched:
// both processes' log lines, every text and JSON column of every table, every Redis value under
// the deployment's key prefix, the CLI's table and JSON, each delivered mail and Slack message. A new sink of one of these kinds is caught here; a new
// kind of sink must be added to this walk (see the closing note of issue 12).
import { testDatabaseUrl } from '@ccat/db/testing';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readOperation } from '@ccat/db';
import { startSmtp, testRedisUrl, type TestSmtp, waitFor } from '@ccat/test-support';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createE2E, runCli, type E2E } from './support/system.js';

const PEM_BODY = 'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun';
/** Each secret form, and the part of it that must appear in no sink. */
const FORMS: readonly (readonly [string, string])[] = [
  ['postgres://ccat:HunterPw2@db.example:5432/ops', 'HunterPw2'],
  ['redis://:RedisPw9@r:6379', 'RedisPw9'],
  ['pass=Sup3rS3cret', 'Sup3rS3cret'],
  ['xoxb-1111111111-SlackWalkTok', 'SlackWalkTok'],
  ['postgres://ccat:Ha#sh/Sl@sh@db/ops', 'Sl@sh'],
  ['{"smtpPassword": "JsonSmtpPw7"}', 'JsonSmtpPw7'],
  ['pg_dump --password FlagPw8 ops', 'FlagPw8'],
  ['Authorization: Bearer BearerTok123456', 'BearerTok123456'],
  ['api_key=ApiKey3141', 'ApiKey3141'],
  ['AKIAWALKWALKWALKWALK', 'AKIAWALKWALKWALKWALK'],
  [`-----BEGIN PRIVATE KEY-----\n${PEM_BODY}\n-----END PRIVATE KEY-----`, PEM_BODY],
];
const MESSAGE = `task failed: ${FORMS.map(([f]) => f).join(' | ')} | bad\u0000byte | lone \ud800 | ${'m'.repeat(5 * 1024 * 1024)}`;

interface SlackPost {
  readonly body: string;
}

/** The Slack Web API's chat.postMessage, answered ok; every request body kept. */
async function startSlackApi(): Promise<{ url: string; posts: SlackPost[]; close(): Promise<void> }> {
  const posts: SlackPost[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      posts.push({ body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, channel: 'C1', ts: `${Date.now()}.000100` }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/api/`,
    posts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let e: E2E;
let smtp: TestSmtp;
let slack: Awaited<ReturnType<typeof startSlackApi>>;
beforeAll(async () => {
  smtp = await startSmtp();
  slack = await startSlackApi();
  e = await createE2E('secrets_walk');
}, 60_000);
afterAll(async () => {
  await e?.close();
  await smtp?.close();
  await slack?.close();
});

/** Every text, varchar and JSON value in the test schema, as text. */
async function everyStoredText(): Promise<string[]> {
  const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(e.database.db)).rows[0]!.s;
  const { rows: columns } = await sql<{ table_name: string; column_name: string }>`
    SELECT table_name, column_name FROM information_schema.columns
    WHERE table_schema = ${schema} AND data_type IN ('text', 'character varying', 'json', 'jsonb')`.execute(
    e.database.db,
  );
  const out: string[] = [];
  for (const c of columns) {
    const { rows } = await sql<{ v: string | null }>`SELECT ${sql.ref(c.column_name)}::text AS v
      FROM ${sql.table(c.table_name)}`.execute(e.database.db);
    for (const r of rows) if (r.v !== null) out.push(r.v);
  }
  return out;
}

/** Every value under the test's Redis key prefix (heartbeats, health keys, BullMQ jobs), as text. */
async function everyRedisValue(): Promise<string> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await e.redis.scan(cursor, 'MATCH', `${e.prefix}*`, 'COUNT', 500);
    cursor = next;
    for (const key of keys) {
      const type = await e.redis.type(key);
      if (type === 'string') out.push((await e.redis.get(key)) ?? '');
      else if (type === 'hash') out.push(JSON.stringify(await e.redis.hgetall(key)));
      else if (type === 'list') out.push(JSON.stringify(await e.redis.lrange(key, 0, -1)));
      else if (type === 'set') out.push(JSON.stringify(await e.redis.smembers(key)));
      else if (type === 'zset') out.push(JSON.stringify(await e.redis.zrange(key, 0, -1, 'WITHSCORES')));
      else if (type === 'stream') out.push(JSON.stringify(await e.redis.xrange(key, '-', '+')));
    }
  } while (cursor !== '0');
  return out.join('\n');
}

function expectClean(sink: string, text: string): void {
  for (const [form, secret] of FORMS)
    expect(text, `${sink} holds ${JSON.stringify(form.slice(0, 40))}`).not.toContain(secret);
  expect(text, `${sink} holds a NUL`).not.toContain('\u0000');
  expect(text, `${sink} holds an escaped NUL`).not.toMatch(/\\u0000/i);
}

describe('a secret thrown by a real task reaches no sink', () => {
  it('logs, database, CLI table and JSON, mail and Slack', async () => {
    const [id] = await e.seed(1);
    const worker = await e.worker('walk-worker', {
      faults: { enabled: true, rules: [{ kind: 'non_retryable', stage: 'start', message: MESSAGE }] },
    });
    const monitor = await e.monitor('walk-monitor', {
      notifier: {
        email: { host: '127.0.0.1', port: smtp.port, ignoreTLS: true, from: 'ccat@example.org' },
        slack: { token: 'xoxb-2222222222-ConfiguredTok', apiUrl: slack.url },
        routes: [{ levels: ['ERROR'], email: ['ops@example.org'], slack: ['#ccat-alerts'] }],
        relay: { pollIntervalMs: 100 },
      },
    });

    // Item 5: the failure is recorded (not deferred until the heartbeat timeout).
    await waitFor(
      async () => (await readOperation(e.database.db, 'raw_data_package', id!))?.status === 'failed',
      {
        timeoutMs: 60_000,
        message: 'the raw_data_package to be failed',
      },
    );
    const failed = await readOperation(e.database.db, 'raw_data_package', id!);
    expect(failed).toMatchObject({ lastErrorCode: 'INJECTED_PERMANENT_FAULT' });
    expect(failed?.lastErrorMessage).toContain('bad\ufffdbyte');
    await waitFor(() => smtp.mails.length > 0 && slack.posts.length > 0, {
      timeoutMs: 60_000,
      message: 'the alert by mail and on Slack',
    });

    const stored = await everyStoredText();
    const table = await runCli(['failures'], cliEnv());
    const json = await runCli(['failures', '--json'], cliEnv());
    expect(table.code).toBe(0);
    expect(json.code).toBe(0);
    expect(table.stdout).toContain('INJECTED_PERMANENT_FAULT');
    expect(table.stdout).toContain('[REDACTED]');

    expectClean('worker log', worker.lines.map((l) => JSON.stringify(l)).join('\n') + worker.stderr());
    expectClean('monitor log', monitor.lines.map((l) => JSON.stringify(l)).join('\n') + monitor.stderr());
    expectClean('database', stored.join('\n'));
    const redisText = await everyRedisValue();
    expect(redisText.length).toBeGreaterThan(0);
    expectClean('Redis', redisText);
    expectClean('CLI table', table.stdout + table.stderr);
    expectClean('CLI JSON', json.stdout + json.stderr);
    expectClean('mail', smtp.mails.map((m) => `${m.subject}\n${m.text}`).join('\n'));
    expectClean('Slack', slack.posts.map((p) => decodeURIComponent(p.body.replace(/\+/g, ' '))).join('\n'));
    expect(slack.posts.map((p) => p.body).join('\n')).not.toContain('ConfiguredTok');

    // Item 9: no log line is megabytes long.
    for (const p of [worker, monitor])
      for (const l of p.lines) expect(JSON.stringify(l).length).toBeLessThan(70_000);
  }, 120_000);

  it('the CLI redacts rows stored before redaction existed', async () => {
    const op = (
      await sql<{ id: string }>`SELECT id::text AS id FROM raw_data_packages LIMIT 1`.execute(e.database.db)
    ).rows[0]!.id;
    await sql`INSERT INTO operation_events (operation_type, operation_id, attempt, event, error_code, message, context)
      VALUES ('raw_data_package', ${op}, 9, 'permanent_failure', 'LEGACY', ${FORMS.map(([f]) => f).join(' ')}, '{}')`.execute(
      e.database.db,
    );
    const table = await runCli(['failures', '--code', 'LEGACY'], cliEnv());
    const json = await runCli(['failures', '--code', 'LEGACY', '--json'], cliEnv());
    expect(table.stdout).toContain('LEGACY');
    expectClean('CLI table (legacy row)', table.stdout);
    expectClean('CLI JSON (legacy row)', json.stdout);
    expect(() => JSON.parse(json.stdout) as unknown).not.toThrow();
  });
});

function cliEnv(): Record<string, string> {
  return {
    DATABASE_URL: testDatabaseUrl(),
    DATABASE_SCHEMA: e.database.schema,
    REDIS_URL: testRedisUrl(),
    CCAT_KEY_PREFIX: e.prefix,
  };
}
