import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  createRedactor,
  isSecretKey,
  REDACTED,
  redactSecrets,
  redactValue,
  urlSecrets,
} from '../src/index.js';

const SLACK = `xoxb-${'1234567890'}-${'abcdefABCDEF'}`;
const PEM = [
  '-----BEGIN RSA PRIVATE KEY-----',
  'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
  '-----END RSA PRIVATE KEY-----',
].join('\n');

// Each row: the text, the secret that must be gone, and (when it matters) the exact result.
const FORMS: readonly (readonly [string, string, string?])[] = [
  // issue 12, item 6
  [
    'connect postgres://ccat:HunterPw2@db.example:5432/ops failed',
    'HunterPw2',
    `connect postgres://ccat:${REDACTED}@db.example:5432/ops failed`,
  ],
  ['redis://:RedisPw9@r:6379', 'RedisPw9', `redis://:${REDACTED}@r:6379`],
  ['login pass=Sup3rS3cret refused', 'Sup3rS3cret', `login pass=${REDACTED} refused`],
  [`slack said invalid_auth for ${SLACK}`, SLACK.slice(5), `slack said invalid_auth for ${REDACTED}`],
  // issue 12, item 8: the forms the alert redactor missed
  ['postgres://ccat:pa#ss/wd@db:5432/ops', 'pa#ss/wd', `postgres://ccat:${REDACTED}@db:5432/ops`],
  ['postgres://ccat:p@ss@db/ops', 'p@ss', `postgres://ccat:${REDACTED}@db/ops`],
  ['{"smtpPassword": "Smtp!Pw 7"}', 'Smtp!Pw 7', `{"smtpPassword": "${REDACTED}"}`],
  ['mysqldump --password HunterFlag1 --host db', 'HunterFlag1', `mysqldump --password ${REDACTED} --host db`],
  // the other common forms
  ['amqp://user:Amqp:Pw@mq.example/vhost', 'Amqp:Pw'],
  ['https://u:%40pct%2Fenc@example.org/x', '%40pct%2Fenc'],
  [
    'GET /x?user=a&password=QsPw42&sslmode=require',
    'QsPw42',
    `GET /x?user=a&password=${REDACTED}&sslmode=require`,
  ],
  ['pwd=PwdVal1 secret=SecVal2 token=TokVal3 api_key=ApiVal4', 'PwdVal1'],
  ['pwd=PwdVal1 secret=SecVal2 token=TokVal3 api_key=ApiVal4', 'SecVal2'],
  ['pwd=PwdVal1 secret=SecVal2 token=TokVal3 api_key=ApiVal4', 'TokVal3'],
  ['pwd=PwdVal1 secret=SecVal2 token=TokVal3 api_key=ApiVal4', 'ApiVal4'],
  ['PGPASSWORD=EnvPw5 psql', 'EnvPw5'],
  ['{"db":{"password":"Js\\"on\\\\Pw"}}', 'on\\\\Pw'],
  ["{'apiToken': 'SingleQ8'}", 'SingleQ8'],
  ['{"client_secret": 123456789}', '123456789'],
  ['--db-password=FlagEq9 --api-key FlagKey10', 'FlagEq9'],
  ['--db-password=FlagEq9 --api-key FlagKey10', 'FlagKey10'],
  ['Authorization: Bearer abc.def.ghi-123', 'abc.def.ghi-123', `Authorization: ${REDACTED}`],
  ['authorization: Basic dXNlcjpwYXNz', 'dXNlcjpwYXNz'],
  ['curl -H "Bearer abcdefghijkl"', 'abcdefghijkl'],
  ['key AKIAABCDEFGHIJKLMNOP used', 'AKIAABCDEFGHIJKLMNOP'],
  ['ghp_abcdefghijklmnopqrstuvwxyz0123456789', 'abcdefghijklmnopqrstuvwxyz0123456789'],
  ['posted to https://hooks.slack.com/services/T000/B000/XXXXSECRET', 'XXXXSECRET'],
  [
    `key file:\n${PEM}\nend`,
    'MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun',
    `key file:\n${REDACTED}\nend`,
  ],
  ['-----BEGIN PRIVATE KEY-----\nMIIEcut', 'MIIEcut'],
];

describe('redactSecrets: every common form of a credential', () => {
  it.each(FORMS.map((f) => ({ text: f[0], secret: f[1], exact: f[2] })))(
    '$text',
    ({ text, secret, exact }) => {
      const out = redactSecrets(text);
      expect(out).not.toContain(secret);
      expect(out).toContain(REDACTED);
      if (exact !== undefined) expect(out).toBe(exact);
    },
  );

  it('is idempotent, so sinks may redact again', () => {
    for (const [text] of FORMS) expect(redactSecrets(redactSecrets(text))).toBe(redactSecrets(text));
  });

  it('keeps JSON text valid JSON', () => {
    const json = JSON.stringify({
      msg: 'postgres://ccat:p@ss"w\\d@db/ops pass=x"y',
      password: 'a"b',
      nested: { apiToken: 'q\\"r' },
    });
    expect(() => JSON.parse(redactSecrets(json)) as unknown).not.toThrow();
    expect(redactSecrets(json)).not.toContain('a\\"b');
  });

  it('finds JSON secret keys inside JSON strings (a quoted config printed as JSON)', () => {
    const doubly = JSON.stringify({ message: 'config {"smtpPassword": "Dbl\\Pw7", "host": "mx"}' });
    const out = redactSecrets(doubly);
    expect(out).not.toContain('Pw7');
    expect(JSON.parse(out)).toEqual({ message: 'config {"smtpPassword": "[REDACTED]", "host": "mx"}' });
  });

  it('leaves ordinary text alone', () => {
    for (const text of [
      'wrong password for user ccat',
      'psql -p 5432 -h db',
      'https://example.org:443/path?x=1',
      'redis://127.0.0.1:6379',
      'checksum mismatch: expected abc got def',
      'postgres://ccat@db/ops',
    ])
      expect(redactSecrets(text)).toBe(text);
  });

  it('remembers only clean texts, and still cuts a remembered text to maxLength', () => {
    const text = 'stalled: no heartbeat before its deadline';
    expect(redactSecrets(text)).toBe(text);
    expect(redactSecrets(text)).toBe(text);
    expect(redactSecrets(text, 10)).toBe(`stalled: n…[truncated ${text.length - 10} chars]`);
    for (let i = 0; i < 3; i++) expect(redactSecrets('pass=hunter22 x')).toBe(`pass=${REDACTED} x`);
  });

  it('gives the same answer for a bad maxLength whether or not it saw the text before', () => {
    const text = 'a clean text seen before and after';
    const first = redactSecrets(text, Number.NaN);
    redactSecrets(text);
    expect(redactSecrets(text, Number.NaN)).toBe(first);
  });

  it('keeps no larger text alive through a remembered slice of it', () => {
    // V8 keeps the whole of a text a short one was cut from; the memo keeps copies.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    gc();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 200; i++) redactSecrets(`${i} clean words `.repeat(40_000).slice(0, 100));
    gc();
    // 200 texts of about 1 MB each: kept alive, the heap would grow by some 200 MB.
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(20 * 1024 * 1024);
  });

  it('takes literal secrets and extra patterns, raw and percent-decoded', () => {
    const redact = createRedactor({ secrets: ['pl@in-Pw', 'p%40ss-enc'], patterns: ['ccat-key-[0-9]+'] });
    expect(redact('a pl@in-Pw b p@ss-enc c ccat-key-123')).toBe(`a ${REDACTED} b ${REDACTED} c ${REDACTED}`);
  });
});

describe('redactValue', () => {
  it('redacts a short text every time it comes back (only clean texts are remembered)', () => {
    for (let i = 0; i < 3; i++) {
      expect(redactValue({ note: 'token=abc123def456', plain: 'worker-1' })).toEqual({
        note: `token=${REDACTED}`,
        plain: 'worker-1',
      });
      expect(redactValue(['https://u:hunter22@db', 'https://u:hunter22@db'])).toEqual([
        `https://u:${REDACTED}@db`,
        `https://u:${REDACTED}@db`,
      ]);
    }
    // More distinct clean texts than the memo holds: every one still comes back as it was.
    for (let i = 0; i < 10_000; i++) expect(redactValue({ w: `worker-${i}` })).toEqual({ w: `worker-${i}` });
    expect(redactValue({ k: 'password=hunter22' })).toEqual({ k: `password=${REDACTED}` });
  });

  it('blanks secret-named keys at any depth and redacts every string, whatever the shape', () => {
    const cyclic: Record<string, unknown> = { url: 'https://a:b@c' };
    cyclic['self'] = cyclic;
    expect(
      redactValue({
        apiToken: 'x',
        smtpPassword: { nested: 'y' },
        nested: { pass: 'z', list: ['postgres://u:pw@h'] },
        cyclic,
        ok: 'fine',
      }),
    ).toEqual({
      apiToken: REDACTED,
      smtpPassword: REDACTED,
      nested: { pass: REDACTED, list: [`postgres://u:${REDACTED}@h`] },
      cyclic: { url: `https://a:${REDACTED}@c`, self: '[Circular]' },
      ok: 'fine',
    });
  });

  it('names secret keys by the field’s usual names', () => {
    for (const k of [
      'password',
      'DB_PASSWORD',
      'smtpPass',
      'pass',
      'SMTP_PASS',
      'smtp.pass',
      'passwd',
      'token',
      'slackToken',
      'api_key',
      'Authorization',
      'cookie',
      'clientSecret',
    ])
      expect(isSecretKey(k), k).toBe(true);
    for (const k of [
      'url',
      'host',
      'poolSize',
      'passes',
      'bypassCache',
      'bypass',
      'compass',
      'message',
      'level',
    ])
      expect(isSecretKey(k), k).toBe(false);
  });
});

describe('bounded redaction', () => {
  it('redacts before it cuts, so a secret at the cut is not half shown', () => {
    const text = `${'x'.repeat(95)} postgres://ccat:HunterPw2@db/ops`;
    const out = redactSecrets(text, 110);
    expect(out).not.toContain('Hunter');
    expect(out).toMatch(/…\[truncated \d+ chars\]$/);
  });

  it('bounds a 5 MB text and its cost, whatever it holds (issue 12, item 9)', () => {
    const hostile = [
      'a.'.repeat(2_500_000),
      'x://a:'.repeat(900_000),
      'pass='.repeat(1_000_000),
      `"password": "${'\\"'.repeat(2_000_000)}`,
    ];
    for (const text of hostile) {
      const out = redactSecrets(text, 4000);
      expect(out.length).toBeLessThan(4100);
    }
  });

  it('never splits a surrogate pair', () => {
    const out = redactSecrets(`${'a'.repeat(9)}😀tail`, 10);
    expect(out.startsWith('a'.repeat(9) + '…')).toBe(true);
  });
});

describe('urlSecrets', () => {
  it('finds the password as typed and as parsed, and secret-named query values; skips short ones', () => {
    expect(urlSecrets('postgres://u:p%40ss@h/db')).toEqual(['p%40ss']);
    expect(urlSecrets('postgres://ccat:pa#ss/wd@db/ops')).toContain('pa#ss/wd');
    expect(urlSecrets('postgres://u@h/db?password=hunter2&sslmode=require')).toEqual(['hunter2']);
    expect(urlSecrets('redis://:ab@h')).toEqual([]);
    expect(urlSecrets('not a url')).toEqual([]);
  });
});
