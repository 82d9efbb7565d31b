import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigurationError } from '@ccat/errors';
import { configFromEnv, envVarName, envVarPath, mergeConfig, resolveConfig } from '../src/index.js';

const schema = z.strictObject({
  database: z
    .strictObject({
      url: z.string().default('postgres://127.0.0.1/x'),
      poolSize: z.number().int().min(1).default(10),
    })
    .default({ url: 'postgres://127.0.0.1/x', poolSize: 10 }),
  concurrency: z.number().int().min(1).default(4),
  serve: z
    .union([z.literal('all'), z.array(z.strictObject({ site: z.string(), location: z.string() }))])
    .default('all'),
  log: z
    .strictObject({ level: z.enum(['debug', 'info', 'warn']).default('info') })
    .default({ level: 'info' }),
});

describe('resolveConfig: defaults → file → environment, later wins', () => {
  it('uses the defaults', () => {
    expect(resolveConfig(schema)).toEqual({
      database: { url: 'postgres://127.0.0.1/x', poolSize: 10 },
      concurrency: 4,
      serve: 'all',
      log: { level: 'info' },
    });
  });

  it('layers a file and the environment, parsing JSON values, and freezes the result', () => {
    const c = resolveConfig(schema, {
      file: { database: { poolSize: 3 }, concurrency: 2, log: { level: 'debug' } },
      env: {
        CCAT_CONCURRENCY: '8',
        CCAT_SERVE: '[{"site":"cha","location":"buffer"}]',
        DATABASE_URL: 'postgres://u@h/db',
        CCAT_CONFIG: '/etc/ccat.json',
        OTHER: 'x',
      },
      aliases: { DATABASE_URL: 'database.url' },
      ignore: ['CCAT_CONFIG'],
    });
    expect(c).toEqual({
      database: { url: 'postgres://u@h/db', poolSize: 3 },
      concurrency: 8,
      serve: [{ site: 'cha', location: 'buffer' }],
      log: { level: 'debug' },
    });
    expect(Object.isFrozen(c.database)).toBe(true);
  });

  it('maps nested variables with __ and camel-cases keys', () => {
    expect(configFromEnv({ env: { CCAT_DATABASE__POOL_SIZE: '5', CCAT_LOG__LEVEL: 'warn' } })).toEqual({
      database: { poolSize: 5 },
      log: { level: 'warn' },
    });
  });

  it('names the variable of an option path, and only one that the loader maps back to that path', () => {
    expect(envVarName(['database', 'poolSize'])).toBe('CCAT_DATABASE__POOL_SIZE');
    expect(envVarName(['workerId'], 'X_')).toBe('X_WORKER_ID');
    expect(envVarPath('CCAT_DATABASE__POOL_SIZE')).toEqual(['database', 'poolSize']);
    expect(envVarPath('OTHER_DATABASE__POOL_SIZE')).toBeUndefined();
    expect(envVarPath('CCAT_')).toBeUndefined();
    // Capitals in a row and keys with underscores do not survive the round trip: no name.
    expect(envVarName(['notifier', 'email', 'requireTLS'])).toBeUndefined();
    expect(envVarName(['recovery', 'operationTypes', 'data_transfer'])).toBeUndefined();
    for (const path of [['database', 'poolSize'], ['notifier', 'relay', 'leaseMs'], ['keyPrefix']]) {
      const name = envVarName(path)!;
      expect(configFromEnv({ env: { [name]: '"x"' } })).toEqual(
        path.reduceRight<unknown>((value, key) => ({ [key]: value }), 'x'),
      );
    }
  });

  it('refuses bad configuration with one line per problem: path, expected, got', () => {
    let err: unknown;
    try {
      resolveConfig(schema, {
        file: { concurrency: 0, database: { poolSize: 'ten' }, bogus: 1 },
        fileName: 'ccat.json',
        env: { CCAT_LOG__LEVEL: 'loud' },
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigurationError);
    const lines = (err as ConfigurationError).message.split('\n');
    expect(lines[0]).toBe('invalid configuration (file ccat.json and environment):');
    expect(lines.some((l) => l.includes('concurrency:') && l.includes('0'))).toBe(true);
    expect(lines.some((l) => l.includes('database.poolSize:') && l.includes('number'))).toBe(true);
    expect(lines.some((l) => l.includes('log.level:') && l.includes('loud'))).toBe(true);
    expect(lines.some((l) => l.includes('bogus'))).toBe(true);
  });

  it('names the variable behind a bad value or an unknown key', () => {
    let message = '';
    try {
      resolveConfig(schema, { env: { CCAT_WORKER__CONCURRENCY: '4', CCAT_CONCURRENCY: '-1' } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/concurrency: .*got -1 \(from CCAT_CONCURRENCY\)/);
    expect(message).toMatch(/Unrecognized key: "worker".*\(from CCAT_WORKER__CONCURRENCY\)/);
  });

  it('mergeConfig replaces arrays and scalars, merges objects', () => {
    expect(mergeConfig({ a: { b: 1, c: [1, 2] }, d: 1 }, { a: { c: [3] }, d: undefined })).toEqual({
      a: { b: 1, c: [3] },
      d: 1,
    });
  });
});

describe('configuration errors never print a secret (issue 12, item 7)', () => {
  const secretSchema = z.strictObject({
    database: z
      .strictObject({ url: z.string().default('postgres://127.0.0.1/x'), poolSize: z.number().default(10) })
      .prefault({}),
    notifier: z
      .strictObject({
        slack: z.strictObject({ token: z.string(), channel: z.string().default('#ops') }).optional(),
        email: z
          .strictObject({
            host: z.string(),
            auth: z.strictObject({ user: z.string(), pass: z.string() }).optional(),
          })
          .optional(),
      })
      .prefault({}),
  });
  const failure = (sources: Parameters<typeof resolveConfig>[1]): string => {
    try {
      resolveConfig(secretSchema, sources);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigurationError);
      const err = e as ConfigurationError;
      // Nothing reachable from the error holds the secret: message, context, cause.
      return `${err.message}\n${JSON.stringify(err.context)}\n${JSON.stringify(err.cause ?? null)}`;
    }
    throw new Error('expected a ConfigurationError');
  };

  it('a misspelt key beside DATABASE_URL names the key, not the URL', () => {
    const text = failure({
      file: { database: { poolsize: 4 } },
      env: { DATABASE_URL: 'postgres://ccat:EnvDbS3cret@db/ops' },
      aliases: { DATABASE_URL: 'database.url' },
    });
    expect(text).toContain('database: Unrecognized key: "poolsize"');
    expect(text).not.toContain('EnvDbS3cret');
  });

  it('a misspelt key beside the Slack token or the SMTP password names the key only', () => {
    const text = failure({
      file: {
        notifier: {
          slack: { token: 'xoxb-1111111111-SlackS3cretTok', chanel: '#ops' },
          email: { host: 'mx', auth: { user: 'ccat', pass: 'SmtpS3cret', usr: 'x' } },
        },
      },
    });
    expect(text).toContain('notifier.slack: Unrecognized key: "chanel"');
    expect(text).toContain('notifier.email.auth: Unrecognized key: "usr"');
    expect(text).not.toContain('SlackS3cretTok');
    expect(text).not.toContain('SmtpS3cret');
  });

  it('a bad value under a secret key is never shown; a URL’s password is redacted; objects show keys only', () => {
    const text = failure({
      file: { notifier: { slack: { token: 12345678 }, email: { host: { pass: 'ObjS3cret' } } } },
      env: { CCAT_DATABASE__URL: '7' },
    });
    expect(text).toMatch(/notifier\.slack\.token: .*got \[REDACTED\]/);
    expect(text).toContain('notifier.email.host: ');
    expect(text).toContain('got an object with keys pass');
    expect(text).not.toContain('12345678');
    expect(text).not.toContain('ObjS3cret');
    const badUrl = failure({
      file: { database: { url: 'postgres://ccat:UrlS3cret@db/ops', poolSize: 'many' } },
    });
    expect(badUrl).toContain('database.poolSize');
    expect(badUrl).not.toContain('UrlS3cret');
  });
});
