#!/usr/bin/env node
// ccat-faults: `pnpm faults`, the fault suite CI runs after the soak. The only module of the suite
// that touches the process (arguments, environment, signals, exit code).
import { parseArgs } from 'node:util';
import { intFlag, usageError } from '../cli.js';
import { runFaultSuite } from './suite.js';

const USAGE = `usage: ccat-faults [--packages 6] [--files 2] [--settle 150] [--seed s]
Two workers and two monitors (each with a relay) run the pipeline on a private PostgreSQL and a
private redis-server (started here on free ports, stopped at the end) while the suite terminates every
backend every 250 ms for 10 s, restarts PostgreSQL fast three times and stops it for 8 s, restarts
Redis, and makes the local SMTP server slow and then hang in the middle of a message. Exit 0 only
when no process exited on its own or logged a fatal line, every operation is final, none completed
twice and every notification was delivered exactly once.
  --packages  raw data packages per wave (four waves)
  --settle    seconds to wait after the last fault for every operation to be final
Needs initdb/postgres (apt-get install postgresql) and redis-server; never touches the shared ones.`;

async function main(): Promise<number> {
  let values;
  try {
    values = parseArgs({
      options: {
        packages: { type: 'string', default: '6' },
        files: { type: 'string', default: '2' },
        settle: { type: 'string', default: '150' },
        seed: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }).values;
  } catch (e) {
    return usageError('ccat-faults', e, USAGE);
  }
  if (values.help === true) {
    console.log(USAGE);
    return 0;
  }
  let options;
  try {
    options = {
      packagesPerWave: intFlag('packages', values.packages, 1, 1000),
      filesPerPackage: intFlag('files', values.files, 1, 100),
      settleTimeoutMs: intFlag('settle', values.settle, 10, 3600) * 1000,
    };
  } catch (e) {
    return usageError('ccat-faults', e, USAGE);
  }
  const abort = new AbortController();
  process.on('SIGINT', () => {
    console.error('\nccat-faults: interrupted; stopping everything it started');
    abort.abort();
  });
  const seed = values.seed ?? Math.random().toString(36).slice(2, 10);
  console.log(`ccat-recovery fault suite (fault seed ${seed})`);
  try {
    return await runFaultSuite({
      ...options,
      seed,
      env: process.env,
      out: process.stdout,
      signal: abort.signal,
    });
  } catch (e) {
    console.error(`ccat-faults: the suite could not run: ${(e as Error).message}`);
    return 1;
  }
}

process.exitCode = await main();
