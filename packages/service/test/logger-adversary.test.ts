// The adversary's findings against the service logger and the configuration messages (issue 12,
// second round): a real ioredis AUTH failure and a real spawn failure logged with their argument
// vectors, credential forms the patterns missed, a secret put in NAME_FILE, shared references and
// long keys that hung the walk, and a line-level pass that broke JSON.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServiceLogger, MAX_LOG_LINE, readServiceConfig } from '../src/index.js';

const S = 'Zq7s3cr3tVALUE';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createServiceLogger({ level: 'info', pretty: false }, { service: 'test' }, false, stream);
  return { logger, lines };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('argument vectors of real errors never reach the log', () => {
  let server: ChildProcess | undefined;
  let port = 0;
  beforeAll(async () => {
    port = await freePort();
    // A private server with a password (the shared one must not be reconfigured).
    server = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--requirepass',
        'the-real-one',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdio: 'ignore' },
    );
    await until(
      () =>
        new Promise<boolean>((resolve) => {
          const socket = connect(port, '127.0.0.1');
          socket.once('connect', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('error', () => resolve(false));
        }),
      'the private redis-server',
    );
  });
  afterAll(async () => {
    if (server?.pid !== undefined && server.exitCode === null) {
      const exited = new Promise((r) => server!.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
  });

  it('a real ioredis AUTH failure: the password in err.command.args', async () => {
    const redis = new Redis({
      host: '127.0.0.1',
      port,
      password: S,
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    const err = await new Promise<Error>((resolve) => {
      redis.once('error', resolve);
      redis.connect().catch(() => undefined);
    });
    redis.disconnect();
    // The reproduction is real: the password is on the error.
    expect(JSON.stringify((err as Error & { command?: unknown }).command)).toContain(S);
    const { logger, lines } = capture();
    logger.warn({ err }, 'heartbeat beat failed');
    logger.warn({ error: err, ctx: { err } }, 'nested');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).not.toContain(S);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
    expect(lines[0]).toContain('arguments)');
  });

  it('a real spawn failure: the password in err.spawnargs', async () => {
    const err = await new Promise<Error>((resolve) => {
      const child = spawn('ccat-no-such-tool-for-test', ['-p', S, 'rsync'], { stdio: 'ignore' });
      child.once('error', resolve);
    });
    expect((err as Error & { spawnargs?: string[] }).spawnargs).toContain(S);
    const { logger, lines } = capture();
    logger.error({ err }, 'transfer tool failed');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(S);
  });
});

describe('createServiceLogger: forms, shapes and JSON validity', () => {
  it('credential forms and context keys that were missed', () => {
    const { logger, lines } = capture();
    const messages = [
      `env: SECRET_KEY=${S} HOME=/root`,
      `signing with secretKey=${S}`,
      `ENCRYPTION_KEY=${S}`,
      `command failed: redis-cli -h 10.0.0.5 -a ${S} --scan`,
      `REDISCLI_AUTH=${S} redis-cli ping`,
      `fatal: unable to access 'https://${S}@github.com/ccat/data.git/': 403`,
      `mysql -uroot -p${S} -e 'select 1'`,
      `sshpass -p ${S} rsync -a src dst`,
      `request failed: Cookie: sessionid=${S}`,
      `password=abc\u00a0${S}`,
      `connect postgres://ccat:ab"${S}@db/ccat failed`,
    ];
    for (const m of messages) logger.error({ err: new Error(m) }, m);
    logger.warn({ ctx: { host: 'db', pw: S } }, 'ctx');
    logger.warn({ request: { host: 'h', auth: `ccat:${S}` } }, 'ctx');
    logger.warn({ ctx: { sessionKey: S, encryptionKey: S } }, 'ctx');
    logger.info('connecting with password=%s to %s', S, 'db');
    logger.info({ a: 1 }, 'token %j', { token: S });
    expect(lines).toHaveLength(messages.length + 5);
    for (const line of lines) {
      expect(line).not.toContain(S);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
  });

  it('every line is valid JSON and keeps what follows a redacted value (findings 6 and 7)', () => {
    const { logger, lines } = capture();
    logger.info({ file: "obs 'token': 1.fits" }, "x 'password' : 12 then more");
    logger.info('password=hunter2\nnextline: disk /data/ccat full');
    logger.info({ key: '-----BEGIN RSA PRIVATE KEY-----\nMIIEabc', after: 'kept' }, 'pem');
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed[1]!['msg']).toBe('password=[REDACTED]\nnextline: disk /data/ccat full');
    expect(parsed[2]!['after']).toBe('kept');
    expect(parsed[2]!['msg']).toBe('pem');
    for (const line of lines) expect(line).not.toMatch(/hunter2|MIIEabc/);
  });

  it('shared references and a 10 MB key do not hang a log call (findings 4 and 5)', () => {
    const { logger, lines } = capture();
    let node: Record<string, unknown> = { leaf: 'x' };
    for (let i = 0; i < 40; i++) node = { k0: node, k1: node, k2: node };
    logger.info({ previous: node }, 'dag');
    logger.info({ ['a://:'.repeat(2_000_000)]: 1, nested: { ['b'.repeat(10_000_000)]: 2 } }, 'long keys');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.length).toBeLessThanOrEqual(MAX_LOG_LINE + 1000);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
    }
  });

  it('child bindings are redacted at every level', () => {
    const { logger, lines } = capture();
    logger
      .child({ dsn: `redis://:${S}@r:1` })
      .child({ token: S, args: ['x', S] })
      .info('hello');
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain(S);
  });
});

describe('readServiceConfig: messages name variables, never secrets (finding 3)', () => {
  const base = {
    name: 'ccat-test',
    usage: 'usage: ccat-test [--config file.json]',
    argv: [] as string[],
    load: () => ({}),
    secretFiles: ['SMTP_PASSWORD', 'SLACK_TOKEN'],
  };
  it.each([
    ['SMTP_PASSWORD_FILE', 'Hunter2-actual-password'],
    ['SLACK_TOKEN_FILE', 'xoxb-1234567890-abcdefghijkl'],
  ])('%s holding the secret instead of its path', async (variable, secret) => {
    const outcome = await readServiceConfig({ ...base, env: { [variable]: secret } });
    expect(outcome).toMatchObject({ exitCode: 2 });
    const stderr = 'stderr' in outcome ? (outcome.stderr ?? '') : '';
    expect(stderr).toContain(variable);
    expect(stderr).toContain('ENOENT');
    expect(stderr).not.toContain(secret);
  });
  it('a refused argument that carries a password', async () => {
    const outcome = await readServiceConfig({ ...base, argv: [`--password=${S}`], env: {} });
    expect(outcome).toMatchObject({ exitCode: 2 });
    expect('stderr' in outcome ? outcome.stderr : '').not.toContain(S);
  });
});
