#!/usr/bin/env node
// ccat-demo: `pnpm demo` (and, with --chaos, `pnpm soak`). The only demo module that touches the process.
import { parseArgs } from 'node:util';
import { intFlag, usageError } from './cli.js';
import { classifyError } from '@ccat/errors';
import { runNight } from './night.js';
import { runDemo } from './run.js';

const USAGE = `usage: ccat-demo [--packages 50] [--files 4] [--workers 3] [--chaos | --night] [--timeout 240] [--seed s] [--keep]
A synthetic night of observations through the whole pipeline, with faults injected and recovered.
  --chaos     also kill and freeze workers, restart a private Redis, stop the SMTP server and drop
              PostgreSQL connections; then assert nothing was lost or done twice (the CI soak)
  --night     the same night twice: without faults, then with --fault-share (default 0.05) of its
              operations targeted, poison operations (a crash on every attempt) among them; prints
              both throughputs and checks that no operation no fault targeted ended FAILED and
              every poison operation failed POISON_OPERATION with one ERROR alert (issue 13.4)
  --keep      keep the demo database, keys and files (printed) for inspection
environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres; the demo creates and drops a
database of its own next to it), REDIS_URL (default redis://127.0.0.1:6379; a key prefix of its own),
SLACK_TOKEN and CCAT_DEMO_SLACK_CHANNEL to also alert a Slack channel. The demo's workers and monitor
get only PATH, HOME, LANG, LC_ALL, TZ, TMPDIR and NODE_OPTIONS from it: never DATABASE_SCHEMA, CCAT_…
or any other setting of a deployment of yours.`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        packages: { type: 'string', default: '50' },
        files: { type: 'string', default: '4' },
        workers: { type: 'string', default: '3' },
        timeout: { type: 'string' },
        seed: { type: 'string' },
        chaos: { type: 'boolean', default: false },
        night: { type: 'boolean', default: false },
        'fault-share': { type: 'string', default: '0.05' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (e) {
    return usageError('ccat-demo', e, USAGE);
  }
  const v = args.values;
  if (v.help === true) {
    console.log(USAGE);
    return 0;
  }
  let options;
  try {
    options = {
      packages: intFlag('packages', v.packages, 1, 10_000),
      filesPerPackage: intFlag('files', v.files, 1, 1000),
      workers: intFlag('workers', v.workers, 1, 32),
      timeoutMs: intFlag('timeout', v.timeout ?? (v.chaos ? '270' : '240'), 10, 86_400) * 1000,
    };
  } catch (e) {
    return usageError('ccat-demo', e, USAGE);
  }
  const abort = new AbortController();
  let interrupts = 0;
  process.on('SIGINT', () => {
    if (++interrupts > 1) process.exit(130);
    console.error(
      '\nccat-demo: interrupted; stopping and cleaning up (Ctrl-C again to leave everything as it is)',
    );
    abort.abort();
  });
  const slackChannel = process.env['SLACK_TOKEN']
    ? (process.env['CCAT_DEMO_SLACK_CHANNEL'] ?? '#ccat-demo')
    : undefined;
  const share = Number(v['fault-share']);
  if (!(share >= 0 && share <= 1)) {
    console.error(`ccat-demo: --fault-share must be a number from 0 to 1, got ${v['fault-share']}\n${USAGE}`);
    return 2;
  }
  try {
    const demo = {
      ...options,
      chaos: v.chaos === true,
      keep: v.keep === true,
      seed: v.seed ?? Math.random().toString(36).slice(2, 10),
      databaseUrl: process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres',
      redisUrl: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      ...(slackChannel !== undefined && { slackChannel }),
      env: process.env,
      out: process.stdout,
      signal: abort.signal,
    };
    if (v.night === true && demo.chaos) throw new Error('--night and --chaos do not go together');
    const code = v.night === true ? ((await runNight(demo, share, runDemo)).ok ? 0 : 1) : await runDemo(demo);
    return abort.signal.aborted ? 130 : code;
  } catch (e) {
    const err = classifyError(e);
    console.error(`ccat-demo: ${err.message} [${err.code}]`);
    if (['CONNECTION_REFUSED', 'DB_CONNECTION', 'REDIS_UNAVAILABLE'].includes(err.code)) {
      console.error('is PostgreSQL/Redis running? see the README for how to start them');
      return 3;
    }
    return 1;
  }
}

process.exitCode = await main();
