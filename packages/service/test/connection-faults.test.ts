// The pieces of "no connection fault kills a process" that need no server: URL checks (every URL is
// checked at start, without echoing it) and the once-per-outage log of a lost connection.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  ConnectionFaultLog,
  databaseConfigSchema,
  POSTGRES_URL_RULE,
  REDIS_URL_RULE,
  redisConfigSchema,
  resolveConfig,
  urlProblems,
} from '../src/index.js';

describe('urlProblems', () => {
  it.each([
    ['postgres://u:secret@db.example:5432/ccat', POSTGRES_URL_RULE, []],
    ['postgresql://db.example/ccat?sslmode=require', POSTGRES_URL_RULE, []],
    ['postgresql:///ccat?host=/run/postgresql', POSTGRES_URL_RULE, []],
    ['redis://127.0.0.1:6379', REDIS_URL_RULE, []],
    ['rediss://:secret@cache.example/2', REDIS_URL_RULE, []],
    ['redis://[::1]:6379', REDIS_URL_RULE, []],
    [
      'not a url',
      POSTGRES_URL_RULE,
      ['is not a URL: expected postgres://user[:password]@host[:port]/database'],
    ],
    ['http://127.0.0.1:6379', REDIS_URL_RULE, ['scheme must be redis: or rediss:']],
    ['redis://127.0.0.1:99999', REDIS_URL_RULE, ['port out of range: must be from 1 to 65535']],
    ['redis://127.0.0.1:0', REDIS_URL_RULE, ['port out of range: must be from 1 to 65535']],
    ['redis://h:63x79', REDIS_URL_RULE, ['port is not a number: must be from 1 to 65535']],
    ['postgres:///ccat', POSTGRES_URL_RULE, ['has no host']],
    // The database part of a Redis URL goes to SELECT after the start: checked before it.
    ['redis://127.0.0.1:6379/', REDIS_URL_RULE, []],
    ['redis://127.0.0.1:6379/15', REDIS_URL_RULE, []],
    ['redis://127.0.0.1:6379/abc', REDIS_URL_RULE, ['database (the path) must be a number, e.g. /0']],
    ['redis://:secret@h/1/2', REDIS_URL_RULE, ['database (the path) must be a number, e.g. /0']],
    ['redis://h:6379/-1', REDIS_URL_RULE, ['database (the path) must be a number, e.g. /0']],
    [
      'mysql://u:secret@h:70000/x',
      POSTGRES_URL_RULE,
      ['scheme must be postgres: or postgresql:', 'port out of range: must be from 1 to 65535'],
    ],
  ] as const)('%s', (url, rule, expected) => {
    const problems = urlProblems(url, rule);
    expect(problems).toEqual(expected);
    for (const p of problems) expect(p).not.toContain('secret');
  });

  it('is part of the configuration schema: one line per problem, exit-2 material', () => {
    let message = '';
    try {
      // The schema name's rule is its owner's (@ccat/db's schemaNameSchema); the section reports it.
      const schemaName = z
        .string()
        .regex(/^[a-z_]+$/, 'must be a lower-case identifier')
        .default('public');
      const database = databaseConfigSchema(schemaName);
      resolveConfig(z.strictObject({ database, redis: redisConfigSchema }), {
        env: { DATABASE_URL: 'mysql://h:0/x', REDIS_URL: 'redis://h:99999', DATABASE_SCHEMA: 'Bad-Schema' },
        aliases: { DATABASE_URL: 'database.url', REDIS_URL: 'redis.url', DATABASE_SCHEMA: 'database.schema' },
      });
    } catch (e) {
      expect(e).toMatchObject({ code: 'CONFIGURATION_ERROR' });
      message = (e as Error).message;
    }
    const lines = message.split('\n').filter((l) => l.startsWith('  '));
    expect(lines).toHaveLength(4);
    for (const want of [
      /^ {2}database\.url: scheme must be postgres: or postgresql:/,
      /^ {2}database\.url: port out of range/,
      /^ {2}redis\.url: port out of range/,
      /^ {2}database\.schema: must be a lower-case identifier/,
    ])
      expect(
        lines.some((l) => want.test(l)),
        String(want),
      ).toBe(true);
  });
});

describe('ConnectionFaultLog', () => {
  it('logs a loss once per interval however many clients fail, and its restoration once', () => {
    const lines: { msg: string; suppressedSinceLastLine?: number }[] = [];
    const logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as never) });
    let now = 0;
    const log = new ConnectionFaultLog(logger, 'PostgreSQL', { intervalMs: 30_000, now: () => now });
    const terminated = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
      severity: 'FATAL',
    });
    for (let i = 0; i < 40; i++) {
      log.lost(terminated);
      log.restored();
      now += 250;
    }
    expect(lines.map((l) => l.msg)).toEqual([
      'PostgreSQL connection lost; reconnecting',
      'PostgreSQL connection restored',
    ]);
    expect(lines[0]).toMatchObject({ errorCode: 'DB_SHUTDOWN', service: 'PostgreSQL' });
    now += 30_000;
    log.lost(terminated);
    expect(lines.at(-1)).toMatchObject({
      msg: 'PostgreSQL connection lost; reconnecting',
      suppressedSinceLastLine: 39,
    });
  });
});
