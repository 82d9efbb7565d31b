#!/usr/bin/env node
// ccat-recovery: the admin CLI. The only module of the CLI that touches the process (argv, env,
// streams, exit code); everything else is in ./cli/ and takes these as arguments.
import { userInfo } from 'node:os';
import { runCli } from './cli/main.js';

/** Who is running this, for the manual_retry events; containers may have no passwd entry. */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? process.env['LOGNAME'] ?? 'unknown';
  }
}

// `ccat-recovery status | head` closes the pipe early; that is the reader's choice, not a crash.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

const code = await runCli({
  argv: process.argv.slice(2),
  env: process.env,
  operator: operatorName(),
  out: {
    out: (text) => void process.stdout.write(`${text}\n`),
    err: (text) => void process.stderr.write(`${text}\n`),
  },
});
process.exitCode = code;
// Every connection is closed by now, so the process ends on its own once output is flushed. Should
// a handle linger anyway, this bounds the wait (unref: it never keeps the process alive itself).
setTimeout(() => process.exit(code), 5_000).unref();
