import { describe, expect, it } from 'vitest';
import {
  createRedactor,
  formatDuration,
  redactContext,
  resolveTargets,
  type Notification,
} from '../src/index.js';
import { formatDuration as errorsFormatDuration } from '@ccat/errors';
import { contentPolicy, renderFacts } from '../src/internal/render.js';
import { renderEmail } from '../src/internal/render-email.js';
import { renderSlack } from '../src/internal/render-slack.js';
import { cut, escapeSlack, singleLine } from '../src/internal/text.js';

const hostile: Notification = {
  id: '42',
  level: 'ERROR',
  eventKind: 'permanent_failure',
  subject: 'failed <!channel> <@U12345> <https://evil.example|click>\r\nBcc: victim@example.org',
  body: `copy from postgres://ccat:hunter2@db.internal/ops failed\nAuthorization: Bearer abcdefghijklmnop\n<!here> & ${'x'.repeat(50_000)}`,
  context: {
    errorCode: 'CHECKSUM_MISMATCH',
    errorMessage: 'password=s3cr3t! mismatch <!everyone> @channel',
    where: 'cha-buffer\r\nX-Injected: 1',
    smtpPassword: 'also-secret',
    note: 'token: xoxb-1234567890-abcdefghij',
  },
  dedupKey: 'permanent_failure:data_transfer:CHECKSUM_MISMATCH',
  time: new Date('2025-03-01T12:00:00.000Z'),
  operation: { type: 'data_transfer', id: '17', attempt: 3 },
};

const SECRETS = ['hunter2', 'abcdefghijklmnop', 's3cr3t!', 'also-secret', 'xoxb-1234567890-abcdefghij'];

describe('text', () => {
  it('escapes Slack mrkdwn so no mention, link or broadcast can be formed', () => {
    expect(escapeSlack('a & b <!channel> <@U1> <#C1> <!subteam^S1>')).toBe(
      'a &amp; b &lt;!channel&gt; &lt;@U1&gt; &lt;#C1&gt; &lt;!subteam^S1&gt;',
    );
    expect(escapeSlack('@here @channel @everyone')).not.toMatch(/@(here|channel|everyone)/);
  });

  it('makes header text one line and cuts long text with a marker', () => {
    expect(singleLine('a\r\nBcc: x\u2028y\u0000z')).toBe('a Bcc: x yz');
    const long = cut('y'.repeat(1000), 100);
    expect(long.length).toBeLessThanOrEqual(100);
    expect(long).toMatch(/…\[truncated \d+ chars\]$/);
    expect(cut('short', 100)).toBe('short');
  });

  it('re-exports the one duration format of @ccat/errors', () => {
    expect(formatDuration).toBe(errorsFormatDuration);
    expect(formatDuration(7_205_000)).toBe('2h');
  });
});

describe('redaction', () => {
  const redact = createRedactor({ secrets: ['literal-pass-99'], patterns: ['ccat-key-[0-9]+'] });
  it.each([
    ['postgres://u:pw@h/db', 'postgres://u:[REDACTED]@h/db'],
    ['redis://:pa55@127.0.0.1:6379', 'redis://:[REDACTED]@127.0.0.1:6379'],
    ['password=abc123 next', 'password=[REDACTED] next'],
    ['{"password": "abc123"}', '{"password": "[REDACTED]"}'],
    ['api_key: QWERTY', 'api_key: [REDACTED]'],
    ['Authorization: Basic dXNlcjpwYXNz', 'Authorization: [REDACTED]'],
    ['curl -H "Bearer abcdefghijkl"', 'curl -H "Bearer [REDACTED]"'],
    ['xoxb-123456789-abcdefgh', '[REDACTED]'],
    ['AKIAABCDEFGHIJKLMNOP', '[REDACTED]'],
    ['login with literal-pass-99 failed', 'login with [REDACTED] failed'],
    ['value ccat-key-12345 here', 'value [REDACTED] here'],
    ['nothing secret here', 'nothing secret here'],
    // issue 12, item 8: forms the alert redactor missed
    ['postgres://u:pa#ss/wd@h:5432/db', 'postgres://u:[REDACTED]@h:5432/db'],
    ['postgres://ccat:p@ss@db/ops', 'postgres://ccat:[REDACTED]@db/ops'],
    ['{"smtpPassword": "s3cret value"}', '{"smtpPassword": "[REDACTED]"}'],
    ['pg_dump --password Hunter2 ops', 'pg_dump --password [REDACTED] ops'],
  ])('%s', (input, output) => {
    expect(redact(input)).toBe(output);
  });

  it('blanks secret-named context keys and redacts every string, whatever the shape', () => {
    const cyclic: Record<string, unknown> = { url: 'https://a:b@c' };
    cyclic['self'] = cyclic;
    const out = redactContext(
      { apiToken: 'x', nested: { pass: 'y', list: ['postgres://u:p@h'] }, cyclic },
      redact,
    );
    expect(out).toEqual({
      apiToken: '[REDACTED]',
      nested: { pass: '[REDACTED]', list: ['postgres://u:[REDACTED]@h'] },
      cyclic: { url: 'https://a:[REDACTED]@c', self: '[Circular]' },
    });
  });
});

describe('rendering hostile content', () => {
  const policy = contentPolicy({ redact: createRedactor(), maxSubjectLength: 200, maxBodyLength: 5000 });
  const facts = renderFacts({ notification: hostile }, policy);

  it('email: the subject is one line, secrets are gone, the body is cut', () => {
    const mail = renderEmail(facts, { subjectPrefix: '[CCAT]', maxSubjectLength: 200 });
    expect(mail.subject).not.toMatch(/[\r\n]/);
    expect(mail.subject.startsWith('[CCAT] ERROR: failed')).toBe(true);
    expect(mail.text).toContain('What failed:   data_transfer 17');
    expect(mail.text).toContain('Attempt:       3');
    expect(mail.text).toContain('What was done: Marked FAILED');
    expect(mail.text).toContain('What to do:');
    expect(mail.text).toMatch(/…\[truncated \d+ chars\]/);
    expect(mail.text.length).toBeLessThan(8000);
    expect(mail.text).not.toMatch(/\r/);
    expect(mail.text).toContain('Where:         cha-buffer X-Injected: 1');
    for (const s of SECRETS) expect(mail.text + mail.subject).not.toContain(s);
  });

  it('slack: nothing can mention, link or break out, and every block fits', () => {
    const msg = renderSlack(facts);
    const json = JSON.stringify(msg);
    expect(json).not.toMatch(/<!|<@|<#|<https?:/);
    expect(json).not.toMatch(/@(here|channel|everyone)/);
    for (const s of SECRETS) expect(json).not.toContain(s);
    expect(json).toContain('&lt;!channel&gt;');
    for (const b of msg.blocks) {
      if ('text' in b) expect(b.text.text.length).toBeLessThanOrEqual(3000);
      if ('fields' in b) for (const f of b.fields) expect(f.text.length).toBeLessThanOrEqual(2000);
    }
    expect(msg.text.length).toBeLessThanOrEqual(3000);
  });

  it('a body of entities still fits after escaping', () => {
    const many = renderSlack(
      renderFacts(
        { notification: { ...hostile, body: '<'.repeat(20_000) } },
        { ...policy, maxBodyLength: 20_000 },
      ),
    );
    for (const b of many.blocks) if ('text' in b) expect(b.text.text.length).toBeLessThanOrEqual(3000);
  });
});

describe('routing', () => {
  const routes = [
    { levels: ['ERROR' as const], email: ['ops@example.org', 'OPS@example.org'], slack: ['#ccat-alerts'] },
    { eventKinds: ['permanent_failure'], email: ['archive@example.org'] },
    { levels: ['WARNING' as const], slack: ['#ccat-warn', '#ccat-alerts'] },
  ];
  it('the log always, one mail to the union of addresses, each Slack channel once', () => {
    expect(resolveTargets(routes, { level: 'ERROR', eventKind: 'permanent_failure' })).toEqual([
      { key: 'log', channel: 'log', recipients: [] },
      { key: 'email', channel: 'email', recipients: ['archive@example.org', 'ops@example.org'] },
      { key: 'slack:#ccat-alerts', channel: 'slack', recipients: ['#ccat-alerts'] },
    ]);
    expect(
      resolveTargets(routes, { level: 'WARNING', eventKind: 'stall_recovered' }).map((t) => t.key),
    ).toEqual(['log', 'slack:#ccat-alerts', 'slack:#ccat-warn']);
  });
  it('INFO that no route takes stays in the log', () => {
    expect(resolveTargets(routes, { level: 'INFO', eventKind: 'retry_scheduled' })).toEqual([
      { key: 'log', channel: 'log', recipients: [] },
    ]);
  });
});
