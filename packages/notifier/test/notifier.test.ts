import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  LOG_TARGET,
  createLogChannel,
  createNotifier,
  notificationFor,
  type NotifierConfigInput,
} from '../src/index.js';
import { startFakeSlack, type FakeSlack } from './support/slack.js';
import { startSmtp, type TestSmtp, ERROR, INFO, WARN, captureLogs } from '@ccat/test-support';

let smtp: TestSmtp;
let slack: FakeSlack;
beforeAll(async () => {
  smtp = await startSmtp();
  slack = await startFakeSlack();
});
afterAll(async () => {
  await smtp?.close();
  await slack?.close();
});
beforeEach(() => {
  smtp.mails.length = 0;
  slack.calls.length = 0;
  slack.posted.length = 0;
  slack.behave = () => ({ kind: 'ok' });
});

const config = (over: Partial<NotifierConfigInput> = {}): NotifierConfigInput => ({
  email: {
    host: '127.0.0.1',
    port: smtp.port,
    ignoreTLS: true,
    from: 'ccat@example.org',
    connectionTimeoutMs: 2000,
    greetingTimeoutMs: 2000,
  },
  slack: { token: 'xoxb-notifier-test-token', apiUrl: slack.url, timeoutMs: 2000 },
  routes: [
    { levels: ['ERROR'], email: ['ops@example.org'], slack: ['#ccat-alerts'] },
    { levels: ['WARNING'], slack: ['#ccat-alerts'] },
  ],
  ...over,
});

const failure = notificationFor({
  eventKind: 'permanent_failure',
  subject: 'deletion 9 failed',
  operation: { type: 'deletion', id: '9', attempt: 1 },
  error: { code: 'DELETION_NOT_SAFE' },
});

describe('createNotifier().send: alerts without an outbox', () => {
  it('sends an ERROR to its routes now: mail, Slack and the log', async () => {
    const { logger, lines } = captureLogs();
    await using notifier = createNotifier({ config: config(), logger });
    const report = await notifier.send(failure);
    expect(report.ok).toBe(true);
    expect(report.outcomes.map((o) => [o.target.key, o.status])).toEqual([
      ['log', 'sent'],
      ['email', 'sent'],
      ['slack:#ccat-alerts', 'sent'],
    ]);
    expect(smtp.mails.map((m) => m.envelopeTo)).toEqual([['ops@example.org']]);
    expect(slack.posted.map((c) => c.channel)).toEqual(['#ccat-alerts']);
    expect(lines.find((l) => l.level === ERROR && l.msg === 'deletion 9 failed')).toMatchObject({
      operationType: 'deletion',
      operationId: '9',
      attempt: 1,
      notification: { eventKind: 'permanent_failure' },
    });
  });

  it('INFO stays in the log unless routed; WARNING goes where it is routed', async () => {
    const { logger, lines } = captureLogs();
    await using notifier = createNotifier({ config: config(), logger });
    const info = await notifier.send(
      notificationFor({
        eventKind: 'retry_scheduled',
        subject: 'retry 2 of unpack 5',
        operation: { type: 'unpack', id: '5' },
      }),
    );
    expect(info.outcomes.map((o) => o.target)).toEqual([LOG_TARGET]);
    expect(lines.some((l) => l.level === INFO && l.msg === 'retry 2 of unpack 5')).toBe(true);
    const warn = await notifier.send(notificationFor({ eventKind: 'stall_recovered', subject: 'stalled' }));
    expect(warn.outcomes.map((o) => o.target.key)).toEqual(['log', 'slack:#ccat-alerts']);
    expect(lines.some((l) => l.level === WARN && l.msg === 'stalled')).toBe(true);
    expect(smtp.mails).toHaveLength(0);
    expect(slack.posted).toHaveLength(1);
  });

  it('never throws: failures are reported and logged, each channel on its own', async () => {
    const { logger, lines } = captureLogs();
    const down = await startSmtp();
    const port = down.port;
    await down.close();
    slack.behave = () => ({ kind: 'error', error: 'invalid_auth' });
    await using notifier = createNotifier({
      config: config({ email: { ...config().email!, port } }),
      logger,
    });
    const report = await notifier.send(failure);
    expect(report.ok).toBe(false);
    expect(report.outcomes.map((o) => [o.target.key, o.status])).toEqual([
      ['log', 'sent'],
      ['email', 'retry'],
      ['slack:#ccat-alerts', 'failed'],
    ]);
    const errors = lines.filter((l) => l.level === ERROR && l.msg.startsWith('notification not delivered'));
    expect(errors.map((l) => [l['channel'], l['retryable']])).toEqual([
      ['email', true],
      ['slack', false],
    ]);
    expect(JSON.stringify(lines)).not.toContain('xoxb-notifier-test-token');
    // Garbage in is reported too, not thrown.
    const bad = await notifier.send({ ...failure, level: 'FATAL' as never });
    expect(bad).toEqual({ ok: false, outcomes: [] });
  });

  it('after close, send reports instead of throwing', async () => {
    const notifier = createNotifier({ config: config() });
    await notifier.close();
    await notifier.close();
    const report = await notifier.send(failure);
    expect(report.ok).toBe(false);
    expect(smtp.mails).toHaveLength(0);
  });

  it('caps messages per minute per channel: the excess waits, nothing is dropped', async () => {
    let clock = 1_000_000;
    await using notifier = createNotifier({
      config: config({ slack: { token: 'xoxb-notifier-test-token', apiUrl: slack.url, maxPerMinute: 2 } }),
      now: () => clock,
    });
    const target = notifier.targets(failure).find((t) => t.channel === 'slack')!;
    const outcomes = [];
    for (let i = 0; i < 3; i++)
      outcomes.push(await notifier.deliverTo(target, { notification: failure }, { wait: false }));
    expect(outcomes.map((o) => o.status)).toEqual(['sent', 'sent', 'deferred']);
    expect(outcomes[2]).toMatchObject({ retryAfterMs: 60_000 });
    clock += 60_000;
    expect((await notifier.deliverTo(target, { notification: failure }, { wait: false })).status).toBe(
      'sent',
    );
    expect((await notifier.deliverTo(target, { notification: failure }, { wait: false })).status).toBe(
      'sent',
    );
    expect(slack.posted).toHaveLength(4);
    // send() waits for the budget; an abort ends the wait with "deferred", never an exception.
    const ac = new AbortController();
    const pending = notifier.send(failure, { signal: ac.signal });
    setTimeout(() => ac.abort(), 50);
    const report = await pending;
    expect(report.outcomes.find((o) => o.target.channel === 'slack')?.status).toBe('deferred');
  });

  it('a Retry-After pauses the channel for that long', async () => {
    let clock = 5_000_000;
    await using notifier = createNotifier({ config: config(), now: () => clock });
    const target = notifier.targets(failure).find((t) => t.channel === 'slack')!;
    slack.behave = () => ({ kind: 'rate_limited', retryAfterS: 30 });
    expect(await notifier.deliverTo(target, { notification: failure }, { wait: false })).toMatchObject({
      status: 'retry',
      retryAfterMs: 30_000,
    });
    slack.behave = () => ({ kind: 'ok' });
    expect(await notifier.deliverTo(target, { notification: failure }, { wait: false })).toMatchObject({
      status: 'deferred',
      retryAfterMs: 30_000,
    });
    expect(slack.calls).toHaveLength(1);
    clock += 30_000;
    expect((await notifier.deliverTo(target, { notification: failure }, { wait: false })).status).toBe(
      'sent',
    );
  });
});

describe('the log channel', () => {
  it('a digest line names the operations it counts, as the mail and Slack do', async () => {
    const { logger, lines } = captureLogs();
    const channel = createLogChannel({ logger });
    const at = new Date('2026-01-01T00:00:00Z');
    const example = (id: string, attempt: number) => ({
      id,
      subject: `raw_data_package ${id} failed`,
      time: at,
      operation: { type: 'raw_data_package', id, attempt },
    });
    await channel.deliver(
      {
        notification: { ...failure, id: '22', dedupKey: 'k' },
        digest: {
          dedupKey: 'k',
          count: 3,
          firstAt: at,
          lastAt: new Date(at.getTime() + 144_000),
          examples: [example('5', 5), example('9', 5)],
        },
      },
      [],
    );
    const line = lines.find((l) => l.level === ERROR);
    expect(line).toMatchObject({ notification: { digestCount: 3 } });
    const digest = (line as { digest?: { examples: string[]; more?: number } }).digest;
    expect(digest?.examples).toEqual([
      expect.stringMatching(/^raw_data_package 5 \(attempt 5\) at /),
      expect.stringMatching(/^raw_data_package 9 \(attempt 5\) at /),
    ]);
    expect(digest?.more).toBe(1);
  });
});
