import { createConnection } from 'node:net';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  CCATDataOperationError,
  ChecksumVerificationError,
  CLASSIFIER_RULE_KEYS,
  classifyError,
  DatabaseConnectionError,
  DatabaseError,
  DatabaseOperationError,
  DestinationFileExistsError,
  InternalError,
  isRetryable,
  NetworkError,
  OperationAbortedError,
  OperationTimeoutError,
  PackageError,
  RedisCommandError,
  RedisConnectionError,
  StorageError,
  UnknownError,
  ValidationError,
} from '../src/index.js';

const sys = (code: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error(`${code}: simulated`), { code, errno: -1, syscall: 'connect', ...extra });
// pg-protocol's DatabaseError: name "error", a SQLSTATE code and a severity.
const pgError = (code: string, message = `pg ${code}`) =>
  Object.assign(new Error(message), { name: 'error', code, severity: 'ERROR', routine: 'x' });
const named = (name: string, message: string) => Object.assign(new Error(message), { name });

type Case = [
  label: string,
  thrown: () => unknown,
  cls: abstract new (...a: never[]) => unknown,
  code: string,
  retryable: boolean,
];

const cases: Case[] = [
  ['ECONNRESET', () => sys('ECONNRESET'), NetworkError, 'CONNECTION_RESET', true],
  [
    'ECONNREFUSED',
    () => sys('ECONNREFUSED', { address: '127.0.0.1', port: 1 }),
    NetworkError,
    'CONNECTION_REFUSED',
    true,
  ],
  ['ETIMEDOUT', () => sys('ETIMEDOUT'), NetworkError, 'TIMED_OUT', true],
  ['EPIPE', () => sys('EPIPE'), NetworkError, 'BROKEN_PIPE', true],
  ['EAI_AGAIN', () => sys('EAI_AGAIN'), NetworkError, 'DNS_TEMPORARY_FAILURE', true],
  ['EHOSTUNREACH', () => sys('EHOSTUNREACH'), NetworkError, 'HOST_UNREACHABLE', true],
  ['ENOTFOUND is configuration, not weather', () => sys('ENOTFOUND'), NetworkError, 'HOST_NOT_FOUND', false],
  ['ENOSPC retried (space may be freed)', () => sys('ENOSPC'), StorageError, 'STORAGE_FULL', true],
  [
    'EACCES needs a human',
    () => sys('EACCES', { path: '/data/x' }),
    StorageError,
    'PERMISSION_DENIED',
    false,
  ],
  ['ENOENT: a vanished file stays vanished', () => sys('ENOENT'), StorageError, 'FILE_NOT_FOUND', false],
  ['EROFS', () => sys('EROFS'), StorageError, 'READ_ONLY_STORAGE', false],
  ['EEXIST', () => sys('EEXIST'), DestinationFileExistsError, 'DESTINATION_EXISTS', false],
  ['EMFILE', () => sys('EMFILE'), StorageError, 'RESOURCE_EXHAUSTED', true],
  ['pg 08006 connection failure', () => pgError('08006'), DatabaseConnectionError, 'DB_CONNECTION', true],
  ['pg 08001 cannot connect', () => pgError('08001'), DatabaseConnectionError, 'DB_CONNECTION', true],
  [
    'pg 40001 serialization',
    () => pgError('40001'),
    DatabaseOperationError,
    'DB_SERIALIZATION_FAILURE',
    true,
  ],
  ['pg 40P01 deadlock', () => pgError('40P01'), DatabaseOperationError, 'DB_DEADLOCK', true],
  [
    'pg 42P05 behind a transaction pooler is retried, not a syntax error',
    () => pgError('42P05', 'prepared statement "ccat_0123" already exists'),
    DatabaseOperationError,
    'DB_PREPARED_STATEMENT_CONFLICT',
    true,
  ],
  [
    'pg 26000 (prepared statement does not exist) likewise',
    () => pgError('26000', 'prepared statement "ccat_0123" does not exist'),
    DatabaseOperationError,
    'DB_PREPARED_STATEMENT_CONFLICT',
    true,
  ],
  [
    'PgBouncer refusing a startup parameter (08P01) is configuration, not a lost connection',
    () => Object.assign(pgError('08P01', 'unsupported startup parameter: options'), { severity: 'FATAL' }),
    DatabaseOperationError,
    'DB_CONFIGURATION',
    false,
  ],
  [
    'any other 08P01 is a connection fault',
    () => pgError('08P01', 'invalid message'),
    DatabaseConnectionError,
    'DB_CONNECTION',
    true,
  ],
  ['pg 57014 statement timeout', () => pgError('57014'), DatabaseOperationError, 'DB_QUERY_CANCELED', true],
  [
    'pg 55P03 lock not available',
    () => pgError('55P03'),
    DatabaseOperationError,
    'DB_LOCK_NOT_AVAILABLE',
    true,
  ],
  ['pg 57P01 admin shutdown', () => pgError('57P01'), DatabaseConnectionError, 'DB_SHUTDOWN', true],
  ['pg 53300 too many connections', () => pgError('53300'), DatabaseError, 'DB_INSUFFICIENT_RESOURCES', true],
  ['pg 23505 unique', () => pgError('23505'), DatabaseOperationError, 'DB_UNIQUE_VIOLATION', false],
  ['pg 23503 foreign key', () => pgError('23503'), DatabaseOperationError, 'DB_INTEGRITY_VIOLATION', false],
  ['pg 42601 syntax', () => pgError('42601'), DatabaseOperationError, 'DB_SYNTAX_OR_ACCESS', false],
  ['pg 42P01 undefined table', () => pgError('42P01'), DatabaseOperationError, 'DB_SYNTAX_OR_ACCESS', false],
  ['pg 22P02 invalid text', () => pgError('22P02'), DatabaseOperationError, 'DB_DATA_EXCEPTION', false],
  ['pg unknown class retried once', () => pgError('0A000'), DatabaseError, 'DB_ERROR', true],
  [
    'pg "Connection terminated unexpectedly"',
    () => new Error('Connection terminated unexpectedly'),
    DatabaseConnectionError,
    'DB_CONNECTION',
    true,
  ],
  [
    'pg-pool connect timeout',
    () => new Error('timeout exceeded when trying to connect'),
    DatabaseConnectionError,
    'DB_CONNECTION',
    true,
  ],
  [
    'ioredis MaxRetriesPerRequestError',
    () => named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 20).'),
    RedisConnectionError,
    'REDIS_UNAVAILABLE',
    true,
  ],
  [
    'ioredis "Connection is closed."',
    () => new Error('Connection is closed.'),
    RedisConnectionError,
    'REDIS_UNAVAILABLE',
    true,
  ],
  [
    'ioredis commandTimeout',
    () => new Error('Command timed out'),
    RedisConnectionError,
    'REDIS_TIMEOUT',
    true,
  ],
  [
    'Redis LOADING reply',
    () => named('ReplyError', 'LOADING Redis is loading the dataset in memory'),
    RedisConnectionError,
    'REDIS_LOADING',
    true,
  ],
  [
    'Redis WRONGTYPE reply',
    () => named('ReplyError', 'WRONGTYPE Operation against a key holding the wrong kind of value'),
    RedisCommandError,
    'REDIS_COMMAND_FAILED',
    false,
  ],
  [
    'zod error',
    () => z.object({ id: z.number() }).safeParse({ id: 'x' }).error,
    ValidationError,
    'VALIDATION_FAILED',
    false,
  ],
  [
    'DOMException AbortError',
    () => new DOMException('This operation was aborted', 'AbortError'),
    OperationAbortedError,
    'ABORTED',
    true,
  ],
  ['AbortSignal.abort() reason', () => AbortSignal.abort().reason, OperationAbortedError, 'ABORTED', true],
  [
    'AbortSignal.timeout reason',
    () => new DOMException('signal timed out', 'TimeoutError'),
    OperationTimeoutError,
    'TIMEOUT',
    true,
  ],
  [
    'TypeError is a bug',
    () => new TypeError("Cannot read properties of undefined (reading 'x')"),
    InternalError,
    'INTERNAL_ERROR',
    false,
  ],
  [
    'fetch failed wraps ECONNREFUSED',
    () => new TypeError('fetch failed', { cause: sys('ECONNREFUSED') }),
    NetworkError,
    'CONNECTION_REFUSED',
    true,
  ],
  [
    'AggregateError of resets',
    () => new AggregateError([sys('ECONNRESET'), sys('ECONNREFUSED')], 'all failed'),
    NetworkError,
    'CONNECTION_RESET',
    true,
  ],
  ['plain Error unknown', () => new Error('something odd'), UnknownError, 'UNKNOWN_ERROR', true],
  ['string thrown', () => 'boom', UnknownError, 'UNKNOWN_ERROR', true],
  ['undefined thrown', () => undefined, UnknownError, 'UNKNOWN_ERROR', true],
  ['null thrown', () => null, UnknownError, 'UNKNOWN_ERROR', true],
  ['number thrown', () => 42, UnknownError, 'UNKNOWN_ERROR', true],
  ['plain object thrown', () => ({ reason: 'nope' }), UnknownError, 'UNKNOWN_ERROR', true],
  [
    'object with message thrown',
    () => ({ message: 'looks like an error' }),
    UnknownError,
    'UNKNOWN_ERROR',
    true,
  ],
  [
    'hostile toString and getters',
    () => ({
      toString() {
        throw new Error('gotcha');
      },
      get message(): string {
        throw new Error('gotcha');
      },
    }),
    UnknownError,
    'UNKNOWN_ERROR',
    true,
  ],
  [
    'revoked Proxy',
    () => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    },
    UnknownError,
    'UNKNOWN_ERROR',
    true,
  ],
  [
    'CCAT errors pass through',
    () => new PackageError('tar failed', { context: { pkg: 1 } }),
    PackageError,
    'PACKAGE_ERROR',
    true,
  ],
  [
    'checksum mismatch retried twice',
    () => new ChecksumVerificationError('bad sum'),
    ChecksumVerificationError,
    'CHECKSUM_MISMATCH',
    true,
  ],
];

describe('classifyError', () => {
  it('has at least 30 cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
  });

  it.each(cases)('%s', (_label, make, cls, code, retryable) => {
    const thrown = make();
    const e = classifyError(thrown);
    expect(e).toBeInstanceOf(CCATDataOperationError);
    expect(e).toBeInstanceOf(cls);
    expect(e.code).toBe(code);
    expect(e.retryable).toBe(retryable);
    expect(isRetryable(thrown)).toBe(retryable);
    expect(typeof e.message).toBe('string');
    // The original is kept as the cause when it was an Error.
    let isPlainError = false;
    try {
      isPlainError = thrown instanceof Error && !(thrown instanceof CCATDataOperationError);
    } catch {
      // a revoked Proxy throws even on instanceof
    }
    if (isPlainError) expect(e.cause).toBe(thrown);
  });

  it('returns CCAT errors unchanged', () => {
    const original = new PackageError('x');
    expect(classifyError(original)).toBe(original);
  });

  it('keeps retry limits: ENOSPC 5, unknown 1, checksum 2', () => {
    expect(classifyError(sys('ENOSPC')).maxRetries).toBe(5);
    expect(classifyError(new Error('odd')).maxRetries).toBe(1);
    expect(classifyError(new ChecksumVerificationError('x')).maxRetries).toBe(2);
    expect(classifyError(sys('ECONNRESET')).maxRetries).toBeUndefined();
  });

  it('keeps useful context from system and pg errors', () => {
    expect(classifyError(sys('EACCES', { path: '/data/x', syscall: 'open' })).context).toMatchObject({
      errno: 'EACCES',
      path: '/data/x',
      syscall: 'open',
    });
    const pg = Object.assign(pgError('23505'), {
      table: 'sites',
      constraint: 'sites_name_key',
      detail: 'Key (name)=(a) already exists.',
    });
    expect(classifyError(pg).context).toMatchObject({
      sqlstate: '23505',
      table: 'sites',
      constraint: 'sites_name_key',
    });
  });

  it('lists zod issues in the context', () => {
    const e = classifyError(z.object({ id: z.number(), type: z.string() }).safeParse({}).error);
    expect(e.context['issueCount']).toBe(2);
    expect(e.context['issues']).toHaveLength(2);
  });

  it('classifies a real refused connection and a real missing file', async () => {
    const refused = await new Promise<unknown>((resolve) => {
      // Port 1 on loopback: nothing listens there.
      const s = createConnection({ host: '127.0.0.1', port: 1 });
      s.on('error', resolve);
    });
    expect(classifyError(refused)).toMatchObject({ code: 'CONNECTION_REFUSED', retryable: true });
    const missing = await readFile('/nonexistent/ccat/file').catch((e: unknown) => e);
    expect(classifyError(missing)).toMatchObject({ code: 'FILE_NOT_FOUND', retryable: false });
  });

  it('cuts megabyte messages from non-errors', () => {
    const e = classifyError('x'.repeat(2_000_000));
    expect(e.message.length).toBeLessThan(70_000);
    expect(e.message).toContain('truncated');
  });

  it('never throws, whatever it is given', () => {
    const weird: unknown[] = [
      Symbol('s'),
      10n,
      () => 1,
      Object.create(null),
      new Proxy(
        {},
        {
          get: () => {
            throw new Error('trap');
          },
          ownKeys: () => {
            throw new Error('trap');
          },
        },
      ),
      Object.defineProperty(new Error('x'), 'code', {
        get() {
          throw new Error('getter');
        },
      }),
    ];
    for (const w of weird) expect(() => classifyError(w)).not.toThrow();
  });
});

describe('CLASSIFIER_RULE_KEYS', () => {
  it('names inputs that each get a rule of their own, never the catch-alls', () => {
    const { errno, sqlstate, sqlstateClass, redisReply } = CLASSIFIER_RULE_KEYS;
    expect(errno).toContain('ENOSPC');
    expect(sqlstate).toContain('40001');
    expect(sqlstateClass).toContain('08');
    expect(redisReply).toContain('LOADING');
    const probes = [
      ...errno.map((k) => sys(k)),
      ...sqlstate.map((k) => pgError(k)),
      ...sqlstateClass.map((k) => pgError(`${k}ZZZ`)),
      ...redisReply.map((w) => Object.assign(new Error(`${w} simulated`), { name: 'ReplyError' })),
    ];
    for (const probe of probes) {
      const e = classifyError(probe);
      expect(e, String(probe.message)).not.toBeInstanceOf(UnknownError);
      expect(['DB_ERROR', 'REDIS_COMMAND_FAILED'], String(probe.message)).not.toContain(e.code);
    }
  });
});
