// The CLI's pure parts: durations, tables, redaction, the command line, the report's arithmetic.
import { createRedactor, formatDuration, urlSecrets } from '@ccat/errors';
import { redactUrl } from '@ccat/service';
import { describe, expect, it } from 'vitest';
import { buildReport } from '../src/admin/report.js';
import type { ReportData } from '../src/admin/report-queries.js';
import { unservedByType, unservedQueues, unservedWarnings } from '../src/admin/unserved-queues.js';
import { unreachable, UsageError } from '../src/cli/errors.js';
import { parseDuration } from '../src/cli/options.js';
import { scrubbingOutput, writeJson } from '../src/cli/output.js';
import { cleanCell, formatTable } from '../src/cli/render/table.js';
import { runCliInProcess } from './support/cli-process.js';

describe('durations', () => {
  it('parses units and compounds, and refuses everything else with the flag named', () => {
    const ms = (text: string) => parseDuration(text).ms;
    expect(ms('30m')).toBe(1_800_000);
    expect(ms('24h')).toBe(86_400_000);
    expect(ms('7d')).toBe(604_800_000);
    expect(ms('2w')).toBe(1_209_600_000);
    expect(ms('1h30m')).toBe(5_400_000);
    expect(parseDuration('500ms')).toEqual({ text: '500ms', ms: 500 });
    for (const bad of ['', '24', 'h', '1.5h', '-1h', '1 h', '1H', '1y', '0m', '3651d']) {
      expect(() => parseDuration(bad), bad).toThrow(UsageError);
    }
    expect(() => parseDuration('3x')).toThrow(/invalid duration "3x" for --since/);
  });

  it('formats for people with the one format of @ccat/notifier', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(185_000)).toBe('3m 5s');
    expect(formatDuration(7_620_000)).toBe('2h 7m');
  });
});

describe('tables', () => {
  it('pads columns, right-aligns numbers, cuts long cells and cleans control characters', () => {
    const t = formatTable(
      [{ title: 'NAME' }, { title: 'N', align: 'right' }, { title: 'NOTE', maxWidth: 8 }],
      [
        ['alpha', '1', 'short'],
        ['b', '1234', 'a much longer note'],
      ],
    );
    expect(t.split('\n')).toEqual(['NAME      N  NOTE', 'alpha     1  short', 'b      1234  a much …']);
    expect(cleanCell('line one\nline two\t\u001b[31mred\u001b[0m')).toBe('line one line two red');
  });

  it('keeps columns aligned with wide characters (CJK, emoji) and cuts them by display width', () => {
    const t = formatTable(
      [{ title: 'SITE' }, { title: 'N', align: 'right' }, { title: 'NOTE', maxWidth: 6 }],
      [
        ['観測所', '1', 'ok'],
        ['cologne', '22', '🔭🔭🔭🔭🔭'],
      ],
      { indent: '  ' },
    );
    expect(t.split('\n')).toEqual(['  SITE      N  NOTE', '  観測所    1  ok', '  cologne  22  🔭🔭…']);
  });
});

const scrubSecrets = (text: string, secrets: readonly string[]) => createRedactor({ secrets })(text);

describe('redaction', () => {
  it('hides passwords and password-like parameters, and scrubs them from any text', () => {
    expect(redactUrl('postgres://postgres:secret@127.0.0.1:1/x')).toBe(
      'postgres://postgres:[REDACTED]@127.0.0.1:1/x',
    );
    expect(redactUrl('redis://:secret@127.0.0.1:1')).toBe('redis://:[REDACTED]@127.0.0.1:1');
    expect(redactUrl('postgres://u@h/db?password=hunter2&sslmode=require')).toBe(
      'postgres://u@h/db?password=[REDACTED]&sslmode=require',
    );
    expect(redactUrl('not a url with secret')).toBe('(unparseable URL)');
    expect(urlSecrets('postgres://u:p%40ss@h/db')).toEqual(['p%40ss']);
    expect(scrubSecrets('failed: p@ss rejected', urlSecrets('postgres://u:p%40ss@h/db'))).toBe(
      'failed: [REDACTED] rejected',
    );
  });

  it('passwords typed with @, # or / (issue 12, item 8), and secrets in any text', () => {
    expect(redactUrl('postgres://ccat:p@ss@db/ops')).toBe('postgres://ccat:[REDACTED]@db/ops');
    expect(urlSecrets('postgres://ccat:pa#ss/wd@db/ops')).toContain('pa#ss/wd');
    expect(scrubSecrets('echo pa#ss/wd', urlSecrets('postgres://ccat:pa#ss/wd@db/ops'))).toBe(
      'echo [REDACTED]',
    );
    expect(scrubSecrets('token=abc123 and xoxb-1111111111-SlackTok', [])).toBe(
      'token=[REDACTED] and [REDACTED]',
    );
  });

  it('--json output stays one valid JSON document after scrubbing (issue 12, second round)', () => {
    const lines: string[] = [];
    const out = scrubbingOutput({ out: (t) => lines.push(t), err: () => undefined }, ['Lit3ralSecret']);
    writeJson(out, {
      command: 'status',
      failures: [
        { message: "obs 'token': 1.fits failed", after: 'kept' },
        { message: '-----BEGIN RSA PRIVATE KEY-----\nMIIEabc', after: 'kept' },
        { message: 'token=" and more', after: 'kept' },
        { message: 'echo Lit3ralSecret; password=hunter2\nnext line', after: 'kept' },
      ],
    });
    expect(lines).toHaveLength(1);
    const doc = JSON.parse(lines[0]!) as { failures: { message: string; after: string }[] };
    expect(doc.failures.map((f) => f.after)).toEqual(['kept', 'kept', 'kept', 'kept']);
    expect(lines[0]).not.toMatch(/MIIEabc|hunter2|Lit3ralSecret/);
    expect(doc.failures[3]!.message).toBe('echo [REDACTED]; password=[REDACTED]\nnext line');
    // Still the indentation writeJson gave it.
    expect(lines[0]!.split('\n')[1]).toBe('  "command": "status",');
  });

  it('table cells are redacted before they are cut, so no half secret shows', () => {
    const cell = `${'x'.repeat(50)} postgres://ccat:HunterPw2@db.example:5432/ops`;
    const t = formatTable([{ title: 'MESSAGE', maxWidth: 80 }], [[cell]]);
    expect(t).not.toContain('Hunter');
    expect(t).not.toContain('HunterPw2'.slice(0, 4));
  });
});

describe('command line', () => {
  const env = { DATABASE_URL: 'postgres://u@127.0.0.1:1/x', REDIS_URL: 'redis://127.0.0.1:1' };
  it('finds global flags on either side of the command, and help wins over other mistakes', async () => {
    expect(await runCliInProcess(['status', '--bogus', '--help'], env)).toMatchObject({
      code: 0,
      stderr: '',
    });
    const help = await runCliInProcess(['help'], env);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Commands:');
    // Global flags before the command reach it: an unreadable --config is reported (exit 2), not ignored.
    const config = await runCliInProcess(['--config', '/nonexistent/c.json', 'status', '--limit', '5'], env);
    expect(config).toMatchObject({ code: 2, stdout: '' });
    expect(config.stderr).toContain('cannot read the config file /nonexistent/c.json');
    const missing = await runCliInProcess(['retry', '--since'], env);
    expect(missing.stderr).toBe("ccat-recovery: retry: option '--since <D>' argument missing\n");
  });
});

describe('report figures', () => {
  const data = (over: Partial<ReportData['byType'][number]>): ReportData => ({
    windowStart: new Date(0),
    windowEnd: new Date(1),
    byType: [
      {
        type: 'unpack',
        affected: 0,
        completed: 0,
        failed: 0,
        inFlight: 0,
        missing: 0,
        retriesOfCompleted: 0,
        completedInWindow: 0,
        ...over,
      },
    ],
    events: {},
    notifications: { sent: 0, failed: 0, digested: 0, pending: 0 },
    failedNotifications: [],
  });
  it('divides what it defines, and says n/a (null) rather than 0 or NaN for an empty denominator', () => {
    const empty = buildReport({ since: '24h', sinceMs: 1 }, data({}));
    expect(empty.recoverySuccessRate.value).toBeNull();
    expect(empty.retriesPerCompletedOperation.value).toBeNull();
    expect(empty.warnings).toEqual([]);
    const some = buildReport(
      { since: '24h', sinceMs: 1 },
      {
        ...data({ affected: 4, completed: 3, failed: 1, retriesOfCompleted: 5, completedInWindow: 10 }),
        notifications: { sent: 0, failed: 2, digested: 0, pending: 0 },
        failedNotifications: [{ id: '9', eventKind: 'permanent_failure' }],
      },
    );
    expect(some.recoverySuccessRate.value).toBe(0.75);
    expect(some.retriesPerCompletedOperation.value).toBe(0.5);
    // One operation waiting to run again is not a failure: no rate yet, not 0 %.
    const waiting = buildReport({ since: '24h', sinceMs: 1 }, data({ affected: 1, inFlight: 1 }));
    expect(waiting.recoverySuccessRate).toMatchObject({ value: null, affected: 1, settled: 0, inFlight: 1 });
    expect(some.warnings).toEqual([
      'WARNING: 2 notifications failed delivery in the window (#9 permanent_failure, …); see notifications.last_error',
    ]);
  });
});

describe('unserved queues', () => {
  const waiting = [
    { operationType: 'unpack' as const, queue: 'cgn_buf_unpack', pending: 2, pendingDue: 1, scheduled: 1 },
    {
      operationType: 'deletion' as const,
      queue: 'cha_raw_deletion',
      pending: 1,
      pendingDue: 1,
      scheduled: 0,
    },
  ];
  const worker = (status: string, queues: readonly string[] | undefined, serviceType = 'worker') => ({
    serviceType,
    serviceName: 'w1',
    status,
    queues,
  });
  it('lists the queues no live worker serves, most waiting first, per queue', () => {
    expect(unservedQueues(waiting, [worker('alive', ['cgn_buf_unpack'])])).toEqual([
      { operationType: 'deletion', queue: 'cha_raw_deletion', pending: 1, scheduled: 0 },
    ]);
    // A dead worker, or a monitor that lists the queue, serves nothing.
    const none = unservedQueues(waiting, [
      worker('dead', ['cgn_buf_unpack', 'cha_raw_deletion']),
      worker('alive', ['cgn_buf_unpack'], 'monitor'),
    ]);
    expect(none.map((u) => u.queue)).toEqual(['cgn_buf_unpack', 'cha_raw_deletion']);
    expect(unservedWarnings(none)).toEqual([
      'WARNING: 3 waiting (2 pending, 1 scheduled), no live worker serves queue cgn_buf_unpack',
      'WARNING: 1 waiting (1 pending, 0 scheduled), no live worker serves queue cha_raw_deletion',
    ]);
    expect(unservedByType(none)).toMatchObject({ unpack: 3, deletion: 1, raw_data_package: 0 });
    expect(unservedQueues(waiting, [worker('alive', ['cgn_buf_unpack', 'cha_raw_deletion'])])).toEqual([]);
  });
  it('takes a live worker whose record lists no queues (older records) to serve all', () => {
    expect(unservedQueues(waiting, [worker('alive', undefined)])).toEqual([]);
    expect(unservedQueues(waiting, [worker('alive', [])])).toHaveLength(2);
  });
  it('sums up the queues beyond the twentieth in one line', () => {
    const many = Array.from({ length: 23 }, (_, i) => ({
      operationType: 'unpack' as const,
      queue: `q${String(i).padStart(2, '0')}`,
      pending: 1,
      scheduled: 0,
    }));
    const lines = unservedWarnings(many);
    expect(lines).toHaveLength(21);
    expect(lines[20]).toBe('WARNING: and 3 waiting in 3 more queues no live worker serves');
  });
});

// issue 15 (deployment): behind PgBouncer an exhausted pool answers query_wait_timeout; telling the
// operator to start PostgreSQL there is wrong. Only "nothing listens" advises starting the server.
describe('advice for a service that cannot be used', () => {
  const pgError = (code: string, message: string) =>
    Object.assign(new Error(message), { code, severity: 'ERROR', name: 'error' });
  const where = 'postgres://ccat:[REDACTED]@pgbouncer:6432/ccat';

  it('a server that answered (PgBouncer query_wait_timeout, too many connections) is not told to start', () => {
    for (const thrown of [
      pgError('08P01', 'query_wait_timeout'),
      pgError('53300', 'sorry, too many clients already'),
      pgError('57P03', 'the database system is starting up'),
    ]) {
      const e = unreachable('PostgreSQL', where, thrown);
      expect(e.hint, e.message).not.toMatch(/pg_ctlcluster|start it/);
      expect(e.hint).toContain('PgBouncer');
    }
  });

  it('nothing listening is told how to start it; other faults name the setting or the network', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(unreachable('PostgreSQL', where, refused).hint).toContain('pg_ctlcluster');
    expect(unreachable('Redis', 'redis://127.0.0.1:1', refused).hint).toContain('redis-server');
    const unknownHost = Object.assign(new Error('getaddrinfo ENOTFOUND pgbouncer'), { code: 'ENOTFOUND' });
    expect(unreachable('PostgreSQL', where, unknownHost).hint).toMatch(
      /does not resolve: check DATABASE_URL/,
    );
    const timedOut = Object.assign(new Error('connect ETIMEDOUT 10.0.0.9:5432'), { code: 'ETIMEDOUT' });
    expect(unreachable('PostgreSQL', where, timedOut).hint).not.toContain('start it');
  });
});
