import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  NotificationDeliveryError,
  createEmailChannel,
  notificationMessageId,
  createSlackChannel,
  notificationFor,
  type Channel,
  type Notification,
} from '../src/index.js';
import { waitFor, startSmtp, type TestSmtp } from '@ccat/test-support';
import { startFakeSlack, type FakeSlack } from './support/slack.js';

const AUTH = { user: 'ccat', pass: 'smtp-secret-pw' };
const TOKEN = 'xoxb-test-token-123456';

const notification: Notification = {
  ...notificationFor({
    eventKind: 'permanent_failure',
    subject: 'data_transfer 17 failed: checksum mismatch',
    body: 'The copy at col-buffer does not match its source.',
    operation: { type: 'data_transfer', id: '17', attempt: 3 },
    error: { code: 'CHECKSUM_MISMATCH', message: 'sha256 abc != def' },
    context: { where: 'cha-buffer → col-buffer' },
  }),
  id: '501',
};

async function deliveryError(p: Promise<unknown>): Promise<NotificationDeliveryError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(NotificationDeliveryError);
    return e as NotificationDeliveryError;
  }
  throw new Error('expected a NotificationDeliveryError');
}

describe('email channel (real SMTP server)', () => {
  let smtp: TestSmtp;
  let channel: Channel;
  const config = (over: object = {}) => ({
    host: '127.0.0.1',
    port: smtp.port,
    ignoreTLS: true,
    from: 'CCAT Recovery <ccat@example.org>',
    auth: AUTH,
    connectionTimeoutMs: 2000,
    greetingTimeoutMs: 2000,
    socketTimeoutMs: 5000,
    ...over,
  });
  beforeAll(async () => {
    smtp = await startSmtp({ auth: AUTH });
    channel = createEmailChannel({ config: config() });
  });
  afterAll(async () => {
    await channel?.close();
    await smtp?.close();
  });
  beforeEach(() => {
    smtp.mails.length = 0;
  });

  it('mails the recipients a plain-text message that says what failed, where, and what to do', async () => {
    const receipt = await channel.deliver({ notification }, ['ops@example.org', 'archive@example.org']);
    expect(receipt.id).toMatch(/@/);
    expect(smtp.mails).toHaveLength(1);
    const mail = smtp.mails[0]!;
    expect(mail.envelopeFrom).toBe('ccat@example.org');
    expect(mail.envelopeTo.sort()).toEqual(['archive@example.org', 'ops@example.org']);
    expect(mail.headers.get('to')).toBe('ops@example.org, archive@example.org');
    expect(mail.subject).toBe('[CCAT] ERROR: data_transfer 17 failed: checksum mismatch');
    expect(mail.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(mail.headers.get('x-ccat-notification-id')).toBe('501');
    expect(mail.headers.get('x-ccat-level')).toBe('ERROR');
    expect(mail.text).toContain('What failed:   data_transfer 17');
    expect(mail.text).toContain('Where:         cha-buffer → col-buffer');
    expect(mail.text).toContain('Error:         CHECKSUM_MISMATCH: sha256 abc != def');
    expect(mail.text).toContain('Attempt:       3');
    expect(mail.text).toContain('What was done: Marked FAILED');
    expect(mail.text).toContain('The copy at col-buffer does not match its source.');
  });

  it('gives every mail of one notification the same Message-ID, derived from its id', async () => {
    // A mail sent twice (a relay frozen while waiting for the reply to the end of the message) must
    // carry one Message-ID so mail systems collapse the copies.
    await channel.deliver({ notification }, ['ops@example.org']);
    await channel.deliver({ notification }, ['ops@example.org']);
    await channel.deliver({ notification: { ...notification, id: '502' } }, ['ops@example.org']);
    const ids = smtp.mails.map((m) => m.headers.get('message-id'));
    expect(ids[0]).toBe('<ccat-notification-501@example.org>');
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).toBe('<ccat-notification-502@example.org>');
    // A notification without an id (sent directly, not through the outbox) gets a fresh one.
    const { id: _id, ...direct } = notification;
    await channel.deliver({ notification: direct }, ['ops@example.org']);
    expect(smtp.mails[3]!.headers.get('message-id')).toMatch(/^<[^>]+@[^>]+>$/);
    expect(smtp.mails[3]!.headers.get('message-id')).not.toMatch(/ccat-notification-/);
  });

  it('builds a Message-ID from any sender form and keeps only dot-atom characters', () => {
    expect(notificationMessageId('17', 'CCAT <ccat@obs.example.org>')).toBe(
      '<ccat-notification-17@obs.example.org>',
    );
    expect(notificationMessageId('a b<c>@d', 'x@example.org')).toBe(
      '<ccat-notification-a_b_c__d@example.org>',
    );
    expect(notificationMessageId('9', 'x@[ex ample>.org.')).toMatch(/^<ccat-notification-9@example\.org>$/);
  });

  it('hostile text cannot add headers or recipients, and secrets do not leave', async () => {
    const hostile: Notification = {
      ...notification,
      subject: `failed\r\nBcc: thief@example.net\r\nX-Evil: 1 ${AUTH.pass}`,
      body: `dsn postgres://ccat:db-pw-77@db/ops\r\n.\r\nMAIL FROM:<x@y>\n${'z'.repeat(30_000)}`,
    };
    await channel.deliver({ notification: hostile }, ['ops@example.org']);
    const mail = smtp.mails[0]!;
    expect(mail.envelopeTo).toEqual(['ops@example.org']);
    expect(mail.headers.has('bcc')).toBe(false);
    expect(mail.headers.has('x-evil')).toBe(false);
    expect(mail.subject).toContain('Bcc: thief@example.net');
    expect(mail.raw).not.toContain(AUTH.pass);
    expect(mail.raw).not.toContain('db-pw-77');
    expect(mail.text).toContain('postgres://ccat:[REDACTED]@db/ops');
    expect(mail.text).toMatch(/…\[truncated \d+ chars\]/);
    expect(mail.text.length).toBeLessThan(12_000);
  });

  it('bad credentials (535) fail for good and say so', async () => {
    const wrong = createEmailChannel({ config: config({ auth: { user: 'ccat', pass: 'wrong-password' } }) });
    try {
      const e = await deliveryError(wrong.deliver({ notification }, ['ops@example.org']));
      expect(e).toMatchObject({ channel: 'email', retryable: false, code: 'NOTIFY_AUTH_FAILED' });
      expect(e.message).toMatch(/^email: SMTP authentication failed.*535.*not retried$/);
      expect(e.message).not.toContain('wrong-password');
      expect(smtp.mails).toHaveLength(0);
    } finally {
      await wrong.close();
    }
  });

  it('a server that is down is worth retrying', async () => {
    const down = await startSmtp();
    const port = down.port;
    await down.close();
    const c = createEmailChannel({ config: config({ port, auth: undefined }) });
    try {
      const e = await deliveryError(c.deliver({ notification }, ['ops@example.org']));
      expect(e).toMatchObject({ channel: 'email', retryable: true, code: 'NOTIFY_UNAVAILABLE' });
      expect(e.message).toMatch(/^email: the SMTP server is unreachable/);
    } finally {
      await c.close();
    }
  });

  it('an abort ends a send hung after DATA at once and closes its SMTP connection', async () => {
    const hung = await startSmtp({ hangAfterData: true });
    const c = createEmailChannel({ config: config({ port: hung.port, auth: undefined }) });
    try {
      const t0 = Date.now();
      const e = await deliveryError(
        c.deliver({ notification }, ['ops@example.org'], { signal: AbortSignal.timeout(300) }),
      );
      expect(e).toMatchObject({ channel: 'email', retryable: true, code: 'NOTIFY_ABORTED' });
      // Well before the 5 s socket timeout.
      expect(Date.now() - t0).toBeLessThan(2500);
      expect(hung.unanswered).toHaveLength(1);
      await waitFor(() => hung.sessions[0]?.closedAt !== undefined, {
        timeoutMs: 2000,
        message: 'the server saw the connection closed',
      });
      // An already aborted signal sends nothing.
      const before = hung.sessions.length;
      const ac = new AbortController();
      ac.abort(new Error('lease lost'));
      const again = await deliveryError(
        c.deliver({ notification }, ['ops@example.org'], { signal: ac.signal }),
      );
      expect(again).toMatchObject({ code: 'NOTIFY_ABORTED' });
      expect(again.message).toBe('email: send aborted (lease lost); will retry');
      expect(hung.sessions).toHaveLength(before);
    } finally {
      await c.close();
      await hung.close();
    }
  });
});

describe('Slack channel (local Web API)', () => {
  let slack: FakeSlack;
  let channel: Channel;
  beforeAll(async () => {
    slack = await startFakeSlack();
    channel = createSlackChannel({ config: { token: TOKEN, apiUrl: slack.url, timeoutMs: 2000 } });
  });
  afterAll(async () => {
    await channel?.close();
    await slack?.close();
  });
  beforeEach(() => {
    slack.calls.length = 0;
    slack.posted.length = 0;
    slack.behave = () => ({ kind: 'ok' });
  });

  it('posts readable blocks to the channel with chat.postMessage', async () => {
    const receipt = await channel.deliver({ notification }, ['#ccat-alerts']);
    expect(receipt.id).toMatch(/^\d+\.\d+$/);
    expect(slack.calls).toHaveLength(1);
    const call = slack.calls[0]!;
    expect(call.method).toBe('chat.postMessage');
    expect(call.authorization).toBe(`Bearer ${TOKEN}`);
    expect(call.channel).toBe('#ccat-alerts');
    expect(call.params).toMatchObject({ unfurl_links: 'false', unfurl_media: 'false', parse: 'none' });
    expect(call.text).toBe('ERROR: data_transfer 17 failed: checksum mismatch');
    const text = JSON.stringify(call.blocks);
    for (const part of [
      '*What failed*\\ndata_transfer 17',
      '*Where*\\ncha-buffer → col-buffer',
      '*Error*\\nCHECKSUM_MISMATCH: sha256 abc != def',
      '*Attempt*\\n3',
      '*What was done*',
      '*What to do*',
    ])
      expect(text).toContain(part);
  });

  it('429 with Retry-After: one request, retryable, and says how long to wait', async () => {
    slack.behave = () => ({ kind: 'rate_limited', retryAfterS: 7 });
    const e = await deliveryError(channel.deliver({ notification }, ['#ccat-alerts']));
    expect(e).toMatchObject({
      channel: 'slack',
      retryable: true,
      retryAfterMs: 7000,
      code: 'NOTIFY_RATE_LIMITED',
    });
    expect(slack.calls).toHaveLength(1);
  });

  it('invalid_auth is bad credentials: not retried', async () => {
    slack.behave = () => ({ kind: 'error', error: 'invalid_auth' });
    const e = await deliveryError(channel.deliver({ notification }, ['#ccat-alerts']));
    expect(e).toMatchObject({ channel: 'slack', retryable: false, code: 'NOTIFY_AUTH_FAILED' });
    expect(e.message).toBe(
      'slack (slack:#ccat-alerts): invalid_auth: the token is wrong or lacks rights; not retried',
    );
    expect(slack.calls).toHaveLength(1);
  });

  it('channel_not_found is not retried; a 503 and fatal_error are', async () => {
    slack.behave = () => ({ kind: 'error', error: 'channel_not_found' });
    expect((await deliveryError(channel.deliver({ notification }, ['#nope']))).retryable).toBe(false);
    slack.behave = () => ({ kind: 'http', status: 503 });
    expect((await deliveryError(channel.deliver({ notification }, ['#ops']))).retryable).toBe(true);
    slack.behave = () => ({ kind: 'error', error: 'fatal_error' });
    expect((await deliveryError(channel.deliver({ notification }, ['#ops']))).retryable).toBe(true);
    expect(slack.calls).toHaveLength(3);
  });

  it('an abort ends a hung chat.postMessage at once and closes its HTTP request', async () => {
    slack.behave = () => ({ kind: 'hang' });
    const c = createSlackChannel({ config: { token: TOKEN, apiUrl: slack.url, timeoutMs: 5000 } });
    const closedBefore = slack.hangsClosedByClient;
    const t0 = Date.now();
    const e = await deliveryError(
      c.deliver({ notification }, ['#ccat-alerts'], { signal: AbortSignal.timeout(300) }),
    );
    expect(e).toMatchObject({ channel: 'slack', retryable: true, code: 'NOTIFY_ABORTED' });
    expect(Date.now() - t0).toBeLessThan(2500);
    await waitFor(() => slack.hangsClosedByClient > closedBefore, {
      timeoutMs: 2000,
      message: 'the API server saw the request closed',
    });
    await c.close();
  });

  it('an unreachable API is worth retrying', async () => {
    const gone = await startFakeSlack();
    await gone.close();
    const c = createSlackChannel({ config: { token: TOKEN, apiUrl: gone.url, timeoutMs: 2000 } });
    const e = await deliveryError(c.deliver({ notification }, ['#ops']));
    expect(e).toMatchObject({ channel: 'slack', retryable: true, code: 'NOTIFY_UNAVAILABLE' });
  });

  it('hostile content arrives inert: no broadcast, mention or link, no secret', async () => {
    const hostile: Notification = {
      ...notification,
      subject: `<!channel> wake up <@U0123ABC> ${TOKEN}`,
      body: '<!here> see <https://evil.example|the fix> ``` escape ``` @everyone postgres://u:pw9@h',
      context: { errorMessage: '<!subteam^S123> & api_key=abc123', password: 'p' },
    };
    await channel.deliver({ notification: hostile }, ['#ccat-alerts']);
    const raw = decodeURIComponent(slack.calls[0]!.rawBody.replace(/\+/g, ' '));
    expect(raw).not.toMatch(/<!|<@|<#|<https?:/);
    expect(raw).not.toMatch(/@(here|channel|everyone)/);
    expect(raw).not.toContain(TOKEN);
    expect(raw).not.toContain('pw9');
    expect(raw).not.toContain('abc123');
    expect(raw).toContain('&lt;!channel&gt;');
    expect(raw).not.toMatch(/``` escape ```/);
  });

  it('secrets of every common form stay out of the Slack blocks (issue 12, item 8)', async () => {
    const hostile: Notification = {
      ...notification,
      body: [
        'dsn postgres://ccat:Hash#Slash/Pw1@db.example:5432/ops',
        'dsn postgres://ccat:p@ssAt2@db/ops',
        'settings {"smtpPassword": "SmtpJson3"}',
        'ran mysqldump --password FlagPw4 ops',
      ].join('\n'),
      context: { errorMessage: 'redis://:Red#is/Pw5@r:6379 refused' },
    };
    await channel.deliver({ notification: hostile }, ['#ccat-alerts']);
    const raw = decodeURIComponent(slack.calls[0]!.rawBody.replace(/\+/g, ' '));
    for (const secret of [
      'Hash#Slash/Pw1',
      'Slash/Pw1',
      'p@ssAt2',
      'ssAt2',
      'SmtpJson3',
      'FlagPw4',
      'Red#is/Pw5',
      'is/Pw5',
    ])
      expect(raw, secret).not.toContain(secret);
    expect(raw).toContain('postgres://ccat:[REDACTED]@db.example:5432/ops');
  });
});
