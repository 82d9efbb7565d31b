import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { createNotifier, notifierConfigSchema, parseNotifierConfig } from '../src/index.js';

const email = {
  host: 'smtp.example.org',
  from: 'CCAT <ccat@example.org>',
  auth: { user: 'ccat', pass: 'pw-1234' },
};

function problems(input: unknown): string[] {
  try {
    parseNotifierConfig(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as ConfigurationError).message.split('\n').slice(1);
  }
  throw new Error('expected a ConfigurationError');
}

describe('notifier configuration', () => {
  it('fills in defaults and freezes the result', () => {
    const c = parseNotifierConfig({ email, routes: [{ levels: ['ERROR'], email: ['ops@example.org'] }] });
    expect(c.email).toMatchObject({ port: 587, secure: false, maxPerMinute: 30, subjectPrefix: '[CCAT]' });
    expect(c.dedup).toEqual({ windowMs: 600_000, maxExamples: 5 });
    expect(c.retry).toEqual({ maxAttempts: 12, baseMs: 1000, maxMs: 900_000 });
    expect(c.relay).toMatchObject({ pollIntervalMs: 1000, leaseMs: 30_000 });
    expect(Object.isFrozen(c) && Object.isFrozen(c.routes[0])).toBe(true);
    expect(parseNotifierConfig({})).toMatchObject({ routes: [] });
  });

  it('is one schema that apps can compose', () => {
    expect(notifierConfigSchema.safeParse({ routes: [] }).success).toBe(true);
  });

  it('says, per problem, the path, what was expected and what was given', () => {
    const lines = problems({
      email: { ...email, port: 'abc' },
      routes: [{ levels: ['FATAL'], email: ['not-an-address'] }, { slack: ['#ops'] }, { levels: ['ERROR'] }],
      retry: { maxAttempts: 0 },
      surprise: true,
    });
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^notifier\.email\.port: .*expected number.*; got "abc"$/),
        expect.stringMatching(/^notifier\.routes\.0\.levels\.0: .*; got "FATAL"$/),
        expect.stringMatching(
          /^notifier\.routes\.0\.email\.0: expected an email address.*; got "not-an-address"$/,
        ),
        expect.stringMatching(/^notifier\.routes\.2: expected at least one of "email" or "slack"/),
        expect.stringMatching(/^notifier\.retry\.maxAttempts: .*; got 0$/),
        expect.stringMatching(/^notifier: .*surprise/),
      ]),
    );
  });

  it('refuses the old retry keys, saying what replaced them', () => {
    expect(problems({ retry: { baseDelayMs: 5, maxDelayMs: 9, jitter: 0.2, other: 1 } })).toEqual([
      expect.stringMatching(
        /^notifier\.retry: baseDelayMs: renamed: use baseMs .*; maxDelayMs: renamed: use maxMs .*; jitter: removed: .*full jitter.*; other: unrecognized key/,
      ),
    ]);
  });

  it('names a route that points at a channel that is not configured', () => {
    expect(problems({ routes: [{ slack: ['#ops'] }] })).toEqual([
      'notifier.routes.0.slack: routes to Slack here, but the "slack" channel is not configured; got an array of 1',
    ]);
  });

  it('never shows a secret', () => {
    const lines = problems({
      email: { ...email, auth: { user: 'u', pass: 12345 } },
      slack: { token: 98765 },
    });
    expect(lines.join('\n')).not.toMatch(/12345|98765/);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^notifier\.email\.auth\.pass: .*; got \[REDACTED\]$/),
        expect.stringMatching(/^notifier\.slack\.token: .*; got \[REDACTED\]$/),
      ]),
    );
  });

  it('createNotifier refuses invalid options with the same error', () => {
    expect(() => createNotifier({ config: { routes: [{ email: ['ops@example.org'] }] } })).toThrow(
      ConfigurationError,
    );
  });

  it('refuses channel timeouts that do not fit inside the relay lease, naming both keys', () => {
    const lines = problems({
      email: { ...email, socketTimeoutMs: 30_000 },
      slack: { token: 'xoxb-1', timeoutMs: 2500 },
      relay: { leaseMs: 4000 },
    });
    expect(lines).toEqual([
      expect.stringMatching(/^notifier\.email\.connectionTimeoutMs: .*relay\.leaseMs \(4000 ms\)/),
      expect.stringMatching(
        /^notifier\.email\.greetingTimeoutMs: email\.greetingTimeoutMs \(10000 ms\) does not fit inside relay\.leaseMs \(4000 ms\)/,
      ),
      expect.stringMatching(
        /^notifier\.email\.socketTimeoutMs: email\.socketTimeoutMs \(30000 ms\) does not fit inside relay\.leaseMs \(4000 ms\): expected at most half of relay\.leaseMs \(2000 ms\).*; got 30000$/,
      ),
      expect.stringMatching(/^notifier\.slack\.timeoutMs: slack\.timeoutMs \(2500 ms\) .*relay\.leaseMs/),
    ]);
    expect(() =>
      createNotifier({
        config: { slack: { token: 'xoxb-1', timeoutMs: 20_000 }, relay: { leaseMs: 30_000 } },
      }),
    ).toThrow(/slack\.timeoutMs \(20000 ms\) does not fit inside relay\.leaseMs \(30000 ms\)/);
    // The shipped defaults fit, and so does the scaled-down setting (lease 4 s, timeouts 1 s).
    expect(() => parseNotifierConfig({ email, slack: { token: 'xoxb-1' } })).not.toThrow();
    expect(() =>
      parseNotifierConfig({
        email: { ...email, connectionTimeoutMs: 1000, greetingTimeoutMs: 1000, socketTimeoutMs: 1000 },
        relay: { leaseMs: 4000 },
      }),
    ).not.toThrow();
  });
});
