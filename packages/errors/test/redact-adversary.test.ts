// The adversary's findings against the one redactor (issue 12 items 5–9, second round): argument
// vectors, credential forms and key names that were missed, shared references and long keys that
// made the walk hang, and text passes that broke JSON.
import { describe, expect, it } from 'vitest';
import {
  isArgumentsKey,
  isSecretKey,
  REDACTED,
  redactJson,
  redactSecrets,
  redactValue,
  toSafeJson,
} from '../src/index.js';

const S = 'Zq7s3cr3tVALUE';

describe('isSecretKey: one key-name rule, both sides', () => {
  const secret = [
    'password',
    'DB_PASSWORD',
    'PGPASSWORD',
    'smtpPassword',
    'passwd',
    'pwd',
    'pw',
    'db_pw',
    'pass',
    'smtp_pass',
    'smtpPass',
    'passphrase',
    'secret',
    'SECRET_KEY',
    'secretKey',
    'client_secret',
    'token',
    'csrf_token',
    'authToken',
    'auth',
    'REDISCLI_AUTH',
    'basicAuth',
    'Authorization',
    'credentials',
    'cookie',
    'Set-Cookie',
    'session',
    'sessionKey',
    'session_id',
    'sessionid',
    'private_key',
    'privateKey',
    'privKey',
    'api_key',
    'apiKey',
    'x-api-key',
    'APIKEY',
    'access_key',
    'aws_secret_access_key',
    'ENCRYPTION_KEY',
    'encryptionKey',
    'signingKey',
  ];
  const ordinary = [
    'bypass',
    'compass',
    'author',
    'authorName',
    'passenger',
    'possession',
    'keyPrefix',
    'key',
    'monkey',
    'keyboard',
    'host',
    'port',
    'user',
    'username',
    'path',
    'relative_path',
    'name',
    'attempt',
    'workerId',
    'primaryKey',
    'surpass',
  ];
  it.each(secret)('%s names a secret', (key) => {
    expect(isSecretKey(key)).toBe(true);
  });
  it.each(ordinary)('%s does not', (key) => {
    expect(isSecretKey(key)).toBe(false);
  });
  it('judges a 10 MB key on its ends, without a 10 MB split', () => {
    expect(isSecretKey(`${'x'.repeat(10_000_000)}Password`)).toBe(true);
    expect(isSecretKey('x'.repeat(10_000_000))).toBe(false);
  });
});

describe('redactSecrets: credential forms that were missed', () => {
  const forms: Record<string, string> = {
    'SECRET_KEY= in an env dump': `env: SECRET_KEY=${S} HOME=/root`,
    'secretKey=': `signing with secretKey=${S}`,
    'ENCRYPTION_KEY=': `ENCRYPTION_KEY=${S}`,
    'redis-cli -a': `command failed: redis-cli -h 10.0.0.5 -a ${S} --scan`,
    'REDISCLI_AUTH=': `REDISCLI_AUTH=${S} redis-cli ping`,
    'token as URL user': `fatal: unable to access 'https://${S}@github.com/ccat/data.git/': 403`,
    'mysql -pPW': `mysql -uroot -p${S} -e 'select 1'`,
    'sshpass -p PW': `sshpass -p ${S} rsync -a src dst`,
    'Cookie header': `request failed: Cookie: sessionid=${S}; theme=dark`,
    'password with a no-break space': `password=abc\u00a0${S}`,
    'URL password with a double quote': `connect postgres://ccat:ab"${S}@db/ccat failed`,
    'YAML quoted value with a space': `password: 'abc ${S}'`,
    'double-quoted value with spaces': `password="abc ${S} def" next`,
    'Redis AUTH command': `ERR AUTH default ${S} failed`,
    'sessionKey: value': `sessionKey: ${S}`,
    '--password-file style flag': `--db-password ${S}`,
  };
  it.each(Object.entries(forms))('%s', (_name, text) => {
    const out = redactSecrets(text);
    expect(out).not.toContain(S);
    expect(out).toContain(REDACTED);
    expect(redactSecrets(out)).toBe(out);
  });

  it('keeps what closes a quoted value, and what follows', () => {
    expect(redactSecrets(`password: 'a b' host: db`)).toBe(`password: '${REDACTED}' host: db`);
    expect(redactSecrets(`password="a b" next`)).toBe(`password="${REDACTED}" next`);
  });

  it('leaves ordinary text alone', () => {
    const ordinary = [
      'bypass=1 compass: north author: Jane',
      'psql -h db -p 5432 -U postgres',
      'ssh://git@github.com/ccat/data.git',
      'postgres://postgres@127.0.0.1:5432/test',
      'https://ccat-transfer@example.org/path',
      'Error: connect ECONNREFUSED 127.0.0.1:6379',
      'user: ccat, host: db.example, attempt: 3',
      'session ended after 3 attempts',
      // Error codes in prose: the key's last word is not a secret, or `auth` before a colon.
      'invalid_auth: the token is wrong or lacks rights',
      'token_revoked: the token was revoked',
      'rsync --auth-method basic --password-file /run/secrets/rsync',
    ];
    for (const text of ordinary) expect(redactSecrets(text)).toBe(text);
  });
});

describe('argument vectors are shown by their length only', () => {
  it('ioredis command.args and child_process spawnargs', () => {
    const ioredis = Object.assign(new Error('WRONGPASS invalid username-password pair'), {
      command: { name: 'auth', args: ['default', S] },
    });
    const child = Object.assign(new Error('Command failed'), {
      spawnargs: ['sshpass', '-p', S, 'rsync'],
      execArgv: ['--secret', S],
    });
    // The shape a logger's error serializer makes (own enumerable properties copied).
    const out = JSON.stringify(redactValue({ a: { ...ioredis }, b: { ...child }, argv: ['x', S] }));
    expect(out).not.toContain(S);
    expect(out).toContain(`${REDACTED} (2 arguments)`);
    expect(out).toContain(`${REDACTED} (4 arguments)`);
    expect(out).toContain('"name":"auth"');
  });
  it('the rule is the key, not the library', () => {
    for (const k of ['args', 'argv', 'spawnargs', 'execArgv', 'arguments', 'params', 'bindings', 'cmdArgs'])
      expect(isArgumentsKey(k)).toBe(true);
    for (const k of ['name', 'target', 'cargo', 'argument_count_total'])
      expect(isArgumentsKey(k)).toBe(false);
    // Not an array: walked like any value.
    expect(redactValue({ params: { id: 7 } })).toEqual({ params: { id: 7 } });
  });
});

describe('the walk is bounded', () => {
  it('shared (not circular) references: a DAG 40 levels deep costs its size, not 2^40 paths', () => {
    let node: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 40; i++) node = { k0: node, k1: node };
    const out = JSON.stringify(toSafeJson(node, { maxDepth: 64 }));
    expect(out).toContain('[Repeated]');
    expect(out.length).toBeLessThan(10_000);
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = cyclic;
    expect(toSafeJson(cyclic)).toEqual({ a: 1, self: '[Circular]' });
  });
  it('the total number of values is bounded', () => {
    const wide = Array.from({ length: 100 }, () => Array.from({ length: 100 }, (_, i) => ({ i })));
    const out = JSON.stringify(toSafeJson(wide, { maxNodes: 500 }));
    expect(out).toContain('[Truncated: too many values]');
    expect((out.match(/"i"/g) ?? []).length).toBeLessThan(500);
  });
  it('a 10 MB key is cut before it is redacted', () => {
    const key = 'a://:'.repeat(2_000_000);
    const out = redactValue({ [key]: 1 });
    const keys = Object.keys(out as object);
    expect(keys).toHaveLength(1);
    expect(keys[0]!.length).toBeLessThan(400);
  });
});

// A small deterministic generator: documents whose strings hold credentials of every form among
// quotes, escapes, newlines and JSON punctuation.
function generator(seed: number) {
  let state = seed;
  const next = (n: number) => {
    state = (state * 1103515245 + 12345) & 0x7fffffff;
    return state % n;
  };
  const noise = [
    "'",
    '"',
    '\\',
    ':',
    '=',
    ' ',
    '\n',
    '\t',
    ',',
    '}',
    '{',
    '[',
    ']',
    '&',
    ';',
    'x',
    'ok',
    'é',
    '😀',
  ];
  const forms = [
    (s: string) => `'token': ${s}`,
    (s: string) => `"password": "${s}"`,
    (s: string) => `password=${s}`,
    (s: string) => `token="${s}`,
    (s: string) => `pass='${s}`,
    (s: string) => `Authorization: Bearer ${s}`,
    (s: string) => `postgres://u:${s}@db/x`,
    (s: string) => `-----BEGIN RSA PRIVATE KEY-----\n${s}\n`,
    (s: string) => `redis-cli -a ${s}`,
    (s: string) => `--token ${s}`,
    (s: string) => `Cookie: sid=${s}`,
    (s: string) => `{\\"secret\\": \\"${s}\\"}`,
  ];
  const text = (secret: string) => {
    let out = '';
    for (let i = 0, n = 1 + next(6); i < n; i++) out += noise[next(noise.length)]!;
    // A word of its own: `okpass=` is not the key `pass` (`bypass=` must stay readable).
    out += ` ${forms[next(forms.length)]!(secret)}`;
    for (let i = 0, n = next(6); i < n; i++) out += noise[next(noise.length)]!;
    return out;
  };
  return { next, text };
}

describe('JSON stays JSON: a property test over generated documents', () => {
  it('redactSecrets and redactJson on a JSON document give valid JSON, lose no field, keep no secret', () => {
    const g = generator(7);
    for (let i = 0; i < 3000; i++) {
      const secret = `Qx${i}SeCrEt${g.next(1_000_000)}`;
      const doc = { note: g.text(secret), nested: { list: [g.text(secret), 7, null] }, after: 'kept' };
      const text = JSON.stringify(doc, null, i % 2 === 0 ? 2 : undefined);
      for (const out of [redactSecrets(text), redactJson(text)]) {
        const back = JSON.parse(out) as typeof doc;
        expect(back.after).toBe('kept');
        expect(back.nested.list[1]).toBe(7);
        expect(out).not.toContain(secret);
      }
    }
  });

  it('keeps the document spacing when the text pass is already right', () => {
    expect(redactSecrets('{"smtpPassword": "a b", "x": 1}')).toBe(`{"smtpPassword": "${REDACTED}", "x": 1}`);
    const pretty = JSON.stringify({ a: `'token': ${S}`, b: 'kept' }, null, 2);
    const out = redactSecrets(pretty);
    expect(JSON.parse(out)).toEqual({ a: `'token': '${REDACTED}'`, b: 'kept' });
    expect(out.split('\n')).toHaveLength(4);
  });

  it('a JSON \\n escape and the next word survive (finding 7)', () => {
    const doc = JSON.stringify({ message: 'password=[REDACTED]\nnextline: disk /data/ccat full' });
    expect(JSON.parse(redactSecrets(doc))).toEqual({
      message: 'password=[REDACTED]\nnextline: disk /data/ccat full',
    });
    expect(redactSecrets('password=hunter2\\nnext')).toBe(`password=${REDACTED}\\nnext`);
  });

  it('an unterminated PEM block is redacted over its body lines only', () => {
    const text = `key: -----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA${S}\nAbCd+/==\nsaved to /etc/ccat, next step: transfer`;
    const out = redactSecrets(text);
    expect(out).not.toContain(S);
    expect(out).toContain('saved to /etc/ccat, next step: transfer');
    const doc = JSON.stringify({ message: text, after: 'kept' });
    const back = JSON.parse(redactSecrets(doc)) as { message: string; after: string };
    expect(back.after).toBe('kept');
    expect(back.message).toContain('next step: transfer');
  });
});
