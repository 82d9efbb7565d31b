// The redactor's fast path (issue 13 item 3): a text without any trigger fragment skips the
// built-in patterns. It must never skip a secret: the gated redactors are fuzzed here against the
// same patterns run ungated (extra patterns always run), over generated texts that mix credential
// shapes, near misses, escapes, JSON and random letter case.
import { describe, expect, it } from 'vitest';
import { createRedactor, DEFAULT_SECRET_PATTERNS, REDACTED, redactSecrets } from '../src/index.js';

// The same patterns through the path that runs them always: the redactor before the fast path.
const ungated = createRedactor({ only: true, patterns: DEFAULT_SECRET_PATTERNS });

/** A small seeded generator (mulberry32), so a failure names a case that can be run again. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PW = 'Zq7s3cr3tVALUE';
const TOK = 'AbCdEf0123456789ghIJkl';

// Credential shapes, one per kind of built-in pattern, with the value that must not survive.
const SHAPES: readonly (readonly [string, string])[] = [
  [`postgres://ccat:${PW}@db.example:5432/ops`, PW],
  [`amqp://u:${PW}@mq/vhost`, PW],
  [`https://${TOK}@github.com/ccat/x.git`, TOK],
  [`password=${PW}`, PW],
  [`PGPASSWORD=${PW} psql`, PW],
  [`REDISCLI_AUTH=${PW}`, PW],
  [`api_key: ${PW}`, PW],
  [`smtpPass = '${PW}'`, PW],
  [`GET /x?user=a&token=${PW}&sslmode=require`, PW],
  [`db_pw=${PW}`, PW],
  [`SESSION=${PW}`, PW],
  [`jwt: ${PW}`, PW],
  [`otp=${PW}`, PW],
  [`aws.credentials=${PW}`, PW],
  [`--db-password ${PW}`, PW],
  [`Authorization: Bearer ${TOK}`, TOK],
  [`proxy-authorization=Basic ${TOK}`, TOK],
  [`sent Bearer ${TOK} upstream`, TOK],
  [`Set-Cookie: sid=${PW}; Path=/`, PW],
  [`{"smtpPassword": "${PW}"}`, PW],
  [`{"pin": 1, "auth": "${PW}"}`, PW],
  [`'secret': '${PW}'`, PW],
  [`{\\"client_secret\\": \\"${PW}\\"}`, PW],
  [`redis-cli -h r -a ${PW} ping`, PW],
  [`sshpass -p ${PW} ssh host`, PW],
  [`mysqldump -u root -p${PW} ops`, PW],
  [`mariadb -u root -p${PW}`, PW],
  [`AUTH default ${PW}`, PW],
  [`xoxb-1234567890-${TOK}`, TOK],
  [`xapp-1-${TOK}`, TOK],
  [`ghp_${'a1B2'.repeat(9)}`, 'a1B2'.repeat(9)],
  [`github_pat_${'Q9'.repeat(12)}`, 'Q9'.repeat(12)],
  [`glpat-${'x7Y'.repeat(8)}`, 'x7Y'.repeat(8)],
  ['AKIAABCDEFGHIJKLMNOP', 'ABCDEFGHIJKLMNOP'],
  ['ASIAQRSTUVWXYZ234567', 'QRSTUVWXYZ234567'],
  [`AIza${'B'.repeat(35)}`, 'B'.repeat(35)],
  [`sk_live_${'9z'.repeat(10)}`, '9z'.repeat(10)],
  [`rk_test_${'8y'.repeat(10)}`, '8y'.repeat(10)],
  [`eyJhbGciOiJI.eyJzdWIiOiIx.${TOK}`, TOK],
  [`hooks.slack.com/services/T000/B000/${TOK}`, TOK],
  [`-----BEGIN PRIVATE KEY-----\n${'QUJD'.repeat(16)}\n-----END PRIVATE KEY-----`, 'QUJD'.repeat(16)],
];

// What the JSON walk alone acts on: escapes that decode to a secret-named key or a URL, and
// argument vectors.
const JSON_SHAPES: readonly (readonly [string, string])[] = [
  [`{"\\u0070assword": "${PW}"}`, PW],
  [`{"url": "postgres:\\/\\/u:${PW}@h\\/db"}`, PW],
  [`{"argv": ["-x", "${PW}"]}`, PW],
  [`{"params": ["${PW}"]}`, PW],
  [`{"bindings": ["${PW}"]}`, PW],
];

// Ordinary text, near misses (a trigger word that is not a secret) and separators.
const NOISE: readonly string[] = [
  'stalled',
  'raw_data_package 123',
  'attempt 4',
  'What: ',
  'Retries: 0 of 5 used',
  'Where: worker-7',
  'host=db.example',
  'code: STALLED',
  'bypass',
  'compass',
  'author',
  'monkey',
  'keyPrefix=ccat:',
  'passenger',
  'http://example.org/x',
  'a@b.example',
  'ok=1',
  '--verbose',
  '-p 5432',
  '{',
  '}',
  '[',
  ']',
  '"',
  "'",
  ':',
  '=',
  ', ',
  '\n',
  '\\',
  '\\n',
  ' ',
  'é',
  '\u212a', // KELVIN SIGN: lower-cases to k, as a key word does
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function recase(r: () => number, text: string): string {
  const mode = r();
  if (mode < 0.6) return text;
  if (mode < 0.75) return text.toUpperCase();
  if (mode < 0.85) return text.toLowerCase();
  return [...text].map((c) => (r() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join('');
}

/** A generated text: noise, and now and then a credential shape or a JSON shape; sometimes wrapped as JSON. */
function generate(r: () => number): string {
  const parts: string[] = [];
  const n = 1 + Math.floor(r() * 8);
  for (let i = 0; i < n; i++) {
    const x = r();
    if (x < 0.2) parts.push(pick(r, SHAPES)[0]);
    else if (x < 0.25) parts.push(pick(r, JSON_SHAPES)[0]);
    else parts.push(pick(r, NOISE));
  }
  const text = recase(r, parts.join(r() < 0.5 ? ' ' : ''));
  const wrap = r();
  if (wrap < 0.15) return JSON.stringify({ message: text, context: { worker: 'w', reason: 'stalled' } });
  if (wrap < 0.2) return JSON.stringify([text, { note: text }], null, 2);
  return text;
}

describe('the fast path skips no secret', () => {
  it('the shapes used below are secrets the ungated patterns remove', () => {
    for (const [text, secret] of [...SHAPES, ...JSON_SHAPES]) {
      expect(ungated(text), text).not.toContain(secret);
      expect(redactSecrets(text), text).not.toContain(secret);
    }
  });

  it('redactSecrets equals the ungated patterns on 20 000 generated texts', () => {
    const r = rng(13);
    let changed = 0;
    let unchanged = 0;
    for (let i = 0; i < 20_000; i++) {
      const text = generate(r);
      const expected = ungated(text);
      expect(redactSecrets(text), `case ${i}: ${JSON.stringify(text)}`).toBe(expected);
      if (expected === text) unchanged++;
      else changed++;
    }
    // Both sides of the gate were exercised.
    expect(changed).toBeGreaterThan(2000);
    expect(unchanged).toBeGreaterThan(2000);
  });

  it('with a length bound, the same result as the ungated patterns', () => {
    const r = rng(7);
    for (let i = 0; i < 5000; i++) {
      const text = generate(r);
      const max = Math.floor(r() * 120);
      expect(redactSecrets(text, max), `case ${i}: ${max} ${JSON.stringify(text)}`).toBe(ungated(text, max));
    }
  });

  it('a redactor with literal secrets equals the same literals with the ungated patterns', () => {
    const literal = 'plainLiteral42';
    const gated = createRedactor({ secrets: [literal] });
    const reference = createRedactor({ secrets: [literal], only: true, patterns: DEFAULT_SECRET_PATTERNS });
    const r = rng(21);
    for (let i = 0; i < 5000; i++) {
      const text = r() < 0.3 ? `${generate(r)} ${literal} ${generate(r)}` : generate(r);
      const out = gated(text);
      expect(out, `case ${i}: ${JSON.stringify(text)}`).toBe(reference(text));
      expect(out).not.toContain(literal);
    }
  });

  it('a trigger hidden by a JSON escape or a letter case is still seen', () => {
    // Found by the JSON walk, which prints the document again (the escape decoded).
    expect(redactSecrets(`{"\\u0050ASSWORD": "${PW}"}`)).toBe(`{"PASSWORD":"${REDACTED}"}`);
    expect(redactSecrets(`DB_PASSWORD=${PW}`)).toBe(`DB_PASSWORD=${REDACTED}`);
    expect(redactSecrets(`{"api\u212aey": "${PW}"}`)).toBe(`{"api\u212aey": "${REDACTED}"}`);
  });

  it('text without a trigger comes back as the same string', () => {
    const text = 'What: raw_data_package 123, attempt 0 (heartbeat_expired)\nRetries: 0 of 5 used';
    expect(redactSecrets(text)).toBe(text);
    const json = '{"reason":"heartbeat_expired","claimedBy":"w-1","retryCount":0}';
    expect(redactSecrets(json)).toBe(json);
  });
});
