// Argument and configuration mistakes: exit 2, a clear one-line message, and no service is
// contacted (the URLs point at a closed loopback port, so a run that tried would exit 3 instead).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectExit, runCliInProcess, runCliProcess } from './support/cli-process.js';

const env = {
  DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none',
  DATABASE_SCHEMA: 'public',
  REDIS_URL: 'redis://127.0.0.1:1',
  CCAT_KEY_PREFIX: 'ccat-cli-args-test:',
};
const cli = (...args: string[]) => runCliProcess(args, env);
const cliWith = (extra: Record<string, string>, ...args: string[]) =>
  runCliProcess(args, { ...env, ...extra });
/** In-process: the same code path without a process start (about a second of CPU) per case. */
const inProcess = (...args: string[]) => runCliInProcess(args, env);

/** One line on stderr, naming the program. */
const ONE_LINE = /^ccat-recovery: [^\n]+\n$/;

describe('bad arguments and configuration', () => {
  it('exit 2 with a clear one-line message, before touching any service (real processes)', async () => {
    const cases: [string[], RegExp][] = [
      [['bogus'], /unknown command "bogus"; expected one of status, failures, retry, report, migrate/],
      [['status', '--bogus'], /status: unknown option '--bogus'/],
      [
        ['failures', '--since', '3x'],
        /invalid duration "3x" for --since: expected a number and a unit, like 30m, 24h or 7d/,
      ],
      [['retry', 'nope', '1'], /unknown operation type "nope"; expected one of raw_data_package, /],
      [['retry', 'data_transfer', 'abc'], /invalid operation id "abc": expected a positive 64-bit integer/],
    ];
    const [badPrefix, help, commandHelp, ...runs] = await Promise.all([
      cliWith({ CCAT_KEY_PREFIX: 'has space' }, 'status'),
      cli('--help'),
      inProcess('retry', '--help'),
      ...cases.map(([args]) => cli(...args)),
    ]);
    runs.forEach((run, i) => {
      expectExit(run, 2);
      expect(run.stderr).toMatch(cases[i]![1]);
      expect(run.stderr).toMatch(ONE_LINE);
      expect(run.stdout).toBe('');
    });
    // Configuration: one line per problem, naming the setting.
    expectExit(badPrefix, 2);
    expect(badPrefix.stderr).toMatch(/invalid configuration:\n\s+keyPrefix: /);
    expectExit(help, 0);
    expect(help.stdout).toContain('Commands:');
    expect(help.stdout).toContain('exit codes: 0 done');
    expectExit(commandHelp, 0);
    expect(commandHelp.stdout).toContain(
      'ccat-recovery retry --type TYPE [--code CODE] [--since D] [--limit N] --yes',
    );
  });

  it('more argument mistakes, through runCli in-process (the same code path, without a process each)', async () => {
    const cases: [string[], RegExp][] = [
      [[], /no command given/],
      [['--bogus', 'x', 'status'], /unknown option '--bogus'/],
      [['status', '--code', 'X'], /status: unknown option '--code'/],
      [['failures', '--since'], /failures: option '--since <D>' argument missing/],
      [['status', '--limt', '3'], /status: unknown option '--limt' \(Did you mean --limit\?\)/],
      [['report', '--since', '0h'], /invalid duration "0h" for --since: must be longer than zero/],
      [['failures', '--type', 'nope'], /unknown operation type "nope"; expected one of raw_data_package, /],
      [['failures', '--code', 'no spaces'], /invalid --code "no spaces"/],
      [['retry', 'data_transfer'], /retry needs an operation id after the type "data_transfer"/],
      [['retry', 'data_transfer', '0'], /invalid operation id "0"/],
      [['retry'], /retry needs <type> <id>, or --type TYPE … --yes for the bulk form/],
      [['retry', 'data_transfer', '1', '--code', 'X'], /give either <type> <id> or the bulk form/],
      [
        ['retry', '--type', 'data_transfer', '--limit', '0'],
        /invalid --limit "0": expected an integer from 1 to 10000/,
      ],
      [['status', '--limit', '0'], /invalid --limit "0": expected an integer from 1 to 1000/],
      [['status', 'extra'], /status: too many arguments for 'status'/],
      [['retry', 'unpack', '1', '2'], /retry: too many arguments for 'retry'/],
      [['help', 'bogus'], /no help for unknown command "bogus"/],
    ];
    for (const [args, message] of cases) {
      const run = await inProcess(...args);
      expect({ args, ...run }).toMatchObject({ code: 2, stdout: '' });
      expect(run.stderr).toMatch(message);
      expect(run.stderr).toMatch(ONE_LINE);
    }
    const missing = await inProcess('status', '--config', '/nonexistent/ccat.json');
    expect(missing).toMatchObject({ code: 2, stdout: '' });
    expect(missing.stderr).toContain('cannot read the config file /nonexistent/ccat.json');
  });
});

describe('the configuration read as the monitor reads it (@ccat/service)', () => {
  it('a config file with a syntax error next to a secret: exit 2 by position, the secret not printed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccat-cli-args-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(file, '{"notifier": {"slack": {"token": FileS3cretTok}}}');
      const run = await inProcess('status', '--config', file);
      expect(run).toMatchObject({ code: 2, stdout: '' });
      expect(run.stderr).toMatch(ONE_LINE);
      expect(run.stderr).toContain(`cannot read the config file ${file}: not valid JSON`);
      expect(run.stderr).not.toContain('S3cret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("another program's CCAT_ variable: named on stderr as the monitor logs it, then the command runs", async () => {
    const run = await runCliInProcess(['status'], { ...env, CCAT_TRANSPORT__COMMAND: 'rsync' });
    // The command went on: the closed port makes it exit 3 (unreachable), not 2 (configuration).
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(
      'ccat-recovery: environment variables that are not ccat-monitor configuration, ignored: CCAT_TRANSPORT__COMMAND\n',
    );
    expect(run.stderr).not.toContain('rsync');
  });
});
