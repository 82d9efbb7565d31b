// How bytes move between sites. Local copy by default; a command transport runs a configured
// rsync/bbcp-style command line. Either way the data_transfer operation verifies the checksum of
// what arrived: a transport is trusted to copy, not to be right.
import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { dirname } from 'node:path';
import { BBCPError, ConfigurationError, OperationAbortedError } from '@ccat/errors';
import type { ContainedPath } from '@ccat/recovery-handlers';
import { copyFile } from './operations/files.js';

export interface Transport {
  readonly name: string;
  /** Copies `from` to `to` (a partial path; its parent may not exist yet). */
  copy(
    from: ContainedPath,
    to: ContainedPath,
    options: { signal: AbortSignal; onBytes: (n: number) => void },
  ): Promise<void>;
}

export function createLocalCopyTransport(): Transport {
  return {
    name: 'local-copy',
    async copy(from, to, options) {
      await copyFile(from, to, options);
    },
  };
}

export interface CommandTransportOptions {
  /** argv; `{source}` and `{destination}` are replaced, e.g. ["rsync", "--partial", "{source}", "{destination}"]. */
  readonly command: readonly string[];
  /** Exit codes a retry will not fix (e.g. rsync 1: syntax, 2: protocol). Others are retried. */
  readonly nonRetryableExitCodes?: readonly number[];
  /** How often to report the growing destination size as progress (default 1 s). */
  readonly progressIntervalMs?: number;
  /** After SIGTERM to the command's process group, how long before SIGKILL (ms, default 5000). */
  readonly killGraceMs?: number;
}

/** How often the group is probed while waiting for it to be gone (ms). */
const GROUP_POLL_MS = 25;
/** After SIGKILL, how long to wait for the group to be gone before giving up (ms). */
const AFTER_KILL_MS = 5000;

/**
 * Whether any process of group `pgid` is still running. A zombie (exited, not yet reaped by its new
 * parent) counts as gone: it can no longer write. Linux: reads /proc; elsewhere `kill(-pgid, 0)`.
 */
export async function processGroupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: a member exists that we may not signal.
    return true;
  }
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return true;
  }
  for (const pid of pids) {
    let stat: string;
    try {
      stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses: parse after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z') return true;
  }
  return false;
}

/**
 * Ends process group `pgid`: SIGTERM to the group, SIGKILL after `graceMs` if anything is still
 * running, and resolves once no process of the group runs (true), or false when it is still there
 * `AFTER_KILL_MS` after SIGKILL (a process in uninterruptible sleep; it is logged by the caller).
 */
export async function terminateProcessGroup(pgid: number, graceMs: number): Promise<boolean> {
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // ESRCH: already gone.
    }
  };
  const waitGone = async (ms: number) => {
    const until = Date.now() + ms;
    for (;;) {
      if (!(await processGroupAlive(pgid))) return true;
      if (Date.now() >= until) return false;
      await delay(GROUP_POLL_MS);
    }
  };
  if (!(await processGroupAlive(pgid))) return true;
  signalGroup('SIGTERM');
  if (await waitGone(graceMs)) return true;
  signalGroup('SIGKILL');
  return waitGone(AFTER_KILL_MS);
}

/**
 * Runs an external copy command; its failure is a BBCPError carrying the exit code and stderr tail.
 *
 * The command runs in a process group of its own (`detached`). The copy settles only once that
 * whole group is gone: on abort the group gets SIGTERM, then SIGKILL after `killGraceMs`, and the
 * promise rejects with OperationAbortedError after that, so the caller's cleanup of the partial file
 * never races a copy still writing it. A command that exits leaving children behind (a wrapper that
 * backgrounded its copier) has its group ended the same way before the result counts.
 */
export function createCommandTransport(options: CommandTransportOptions): Transport {
  const [program, ...args] = options.command;
  if (
    program === undefined ||
    !args.some((a) => a.includes('{source}')) ||
    !args.some((a) => a.includes('{destination}'))
  ) {
    throw new ConfigurationError(
      'transport.command must be an argv with {source} and {destination}, e.g. ["rsync","{source}","{destination}"]',
    );
  }
  const nonRetryable = new Set(options.nonRetryableExitCodes ?? []);
  const graceMs = options.killGraceMs ?? 5000;
  return {
    name: `command:${program}`,
    async copy(from, to, { signal, onBytes }) {
      signal.throwIfAborted();
      await mkdir(dirname(to), { recursive: true });
      signal.throwIfAborted();
      const argv = args.map((a) => a.replaceAll('{source}', from).replaceAll('{destination}', to));
      const child = spawn(program, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
      // Handlers first, before any await: a spawn failure (ENOENT) arrives as 'error'.
      const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, error }));
        child.once('close', (c) => resolve({ code: c }));
      });
      let stderr = '';
      child.stderr.on('error', () => undefined);
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const poll = setInterval(() => {
        stat(to).then(
          (s) => onBytes(s.size),
          () => undefined,
        );
      }, options.progressIntervalMs ?? 1000);
      const pgid = child.pid;
      let ended: Promise<boolean> | undefined;
      const endGroup = () =>
        (ended ??= pgid === undefined ? Promise.resolve(true) : terminateProcessGroup(pgid, graceMs));
      let onAbort = (): void => undefined;
      try {
        const result = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
          void exited.then(resolve);
          // A leader that outlives SIGKILL (uninterruptible sleep) must not hold the task forever.
          onAbort = () =>
            void endGroup().then((gone) => {
              if (!gone) resolve({ code: null });
            });
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        });
        // The leader is gone; its group (children of a wrapper) goes too, before anything settles.
        const gone = await endGroup();
        if (signal.aborted) {
          throw new OperationAbortedError(`transfer aborted: ${String(signal.reason)}`, {
            cause: result.error ?? signal.reason,
            context: { program, processGroupGone: gone },
          });
        }
        if (result.error !== undefined) {
          throw new BBCPError(`${program} could not be started: ${result.error.message}`, {
            retryable: (result.error as NodeJS.ErrnoException).code !== 'ENOENT',
            cause: result.error,
            context: { program },
          });
        }
        if (result.code !== 0) {
          throw new BBCPError(
            `${program} exited with ${result.code ?? 'a signal'}: ${stderr.trim().split('\n').at(-1) ?? ''}`,
            {
              retryable: result.code === null || !nonRetryable.has(result.code),
              context: { exitCode: result.code, stderr, program },
            },
          );
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        clearInterval(poll);
      }
    },
  };
}
