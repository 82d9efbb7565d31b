// Over 300 lines: the command transport's process isolation and kill escalation read as one story.
// How bytes move between sites. Local copy by default; a command transport runs a configured
// rsync/bbcp-style command line. Either way the data_transfer operation verifies the checksum of
// what arrived: a transport is trusted to copy, not to be right.
import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { delimiter, dirname, isAbsolute } from 'node:path';
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
  /** How the command is kept from outliving its task (see {@link TransportIsolation}); default `auto`. */
  readonly isolation?: 'auto' | TransportIsolation;
  /**
   * Told, once per outage, when the program cannot be started (gone from PATH, no longer executable,
   * exit 126/127 of a wrapper): a configuration problem the operator must fix. Told `undefined`
   * when a later run started it again. Must not throw.
   */
  readonly onUnavailable?: (problem: BBCPError | undefined) => void;
}

/** The code of a copy whose program cannot be started at run time: retried, never final. */
const TRANSPORT_COMMAND_UNAVAILABLE = 'TRANSPORT_COMMAND_UNAVAILABLE';

/** Exit codes with which a shell says a command could not be executed (126) or found (127). */
const NOT_STARTED_EXIT_CODES: ReadonlySet<number> = new Set([126, 127]);

/**
 * - `pid-namespace`: the command runs as a child of an init in a PID namespace of its own, created
 *   by `unshare --pid --fork --kill-child` (plus `--user --map-root-user` when unprivileged). When
 *   that init ends, or `unshare` is killed, the kernel kills every process in the namespace, and
 *   `unshare` exits only after they are gone: nothing the command started (setsid or not) survives
 *   the copy's settling.
 * - `process-group`: the command's process group is ended, then every process carrying this run's
 *   `CCAT_TRANSPORT_RUN` marker in its environment is killed, and, on success, a destination some
 *   other process still holds open (found in /proc/<pid>/fd by device and inode) is refused. What
 *   remains: a descendant that left the group, cleared its environment and opens the file only
 *   later is not seen.
 */
export type TransportIsolation = 'pid-namespace' | 'process-group';

/** The environment variable marking every process one command run started (process-group mode). */
const RUN_MARKER = 'CCAT_TRANSPORT_RUN';

/** `unshare` flags that work here, probed once per process (undefined: no PID namespace available). */
let probed: { flags: readonly string[] | undefined } | undefined;

/**
 * Whether a PID namespace can be created here, and with which `unshare` flags: as root
 * `--pid --fork --kill-child`; otherwise (or where root may not create one, e.g. in a container)
 * with `--user --map-root-user` first. Probed once (runs `unshare … true`, at most twice).
 */
export function probePidNamespace(): readonly string[] | undefined {
  if (probed !== undefined) return probed.flags;
  const base = ['--pid', '--fork', '--kill-child'];
  for (const flags of [base, ['--user', '--map-root-user', ...base]]) {
    const r = spawnSync('unshare', [...flags, 'true'], { stdio: 'ignore', timeout: 5000 });
    if (r.status === 0) {
      probed = { flags };
      return flags;
    }
  }
  probed = { flags: undefined };
  return undefined;
}

/**
 * Where `program` would be executed from: itself when it holds a `/` (relative to the working
 * directory), else the first directory of `PATH` (absolute entries only) holding it; undefined when
 * no such executable regular file exists. Synchronous: a few access(2) calls.
 */
function findExecutable(program: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = program.includes('/')
    ? [program]
    : path
        .split(delimiter)
        .filter((d) => isAbsolute(d))
        .map((d) => `${d}/${program}`);
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      if (statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The init of the namespace: a shell that runs the command as its child and exits with its status.
 * The command is not PID 1 itself, so it gets SIGTERM like any process (a namespace's init ignores
 * signals it has no handler for).
 */
const NAMESPACE_INIT = ['sh', '-c', '"$@" & wait "$!"', 'ccat-transport-init'];

/** Pids (other than this process) whose environment holds `marker=token`. Linux /proc. */
async function pidsMarked(token: string): Promise<number[]> {
  const needle = Buffer.from(`${RUN_MARKER}=${token}\0`);
  const found: number[] = [];
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return found;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    try {
      if ((await readFile(`/proc/${pid}/environ`)).includes(needle)) found.push(Number(pid));
    } catch {
      // exited meanwhile, or not ours to read
    }
  }
  return found;
}

/** Kills (SIGKILL) every process carrying this run's marker; resolves once none is left (true) or after `AFTER_KILL_MS` (false). */
async function killMarked(token: string): Promise<boolean> {
  const until = performance.now() + AFTER_KILL_MS;
  for (;;) {
    const pids = await pidsMarked(token);
    if (pids.length === 0) return true;
    if (performance.now() >= until) return false;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await delay(GROUP_POLL_MS);
  }
}

/** Pids of processes (other than this one) that hold `path`'s inode open. Linux /proc. */
async function holdersOf(path: string): Promise<number[]> {
  let target: { dev: number; ino: number };
  try {
    target = await stat(path);
  } catch {
    return [];
  }
  const holders: number[] = [];
  let pids: string[];
  try {
    pids = (await readdir('/proc')).filter((n) => /^\d+$/.test(n));
  } catch {
    return holders;
  }
  for (const pid of pids) {
    if (Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        // stat follows the magic link to the open file itself (even when renamed or unlinked).
        const s = await stat(`/proc/${pid}/fd/${fd}`);
        if (s.dev === target.dev && s.ino === target.ino) {
          holders.push(Number(pid));
          break;
        }
      } catch {
        // closed meanwhile
      }
    }
  }
  return holders;
}

/** How often the group is probed while waiting for it to be gone (ms). */
const GROUP_POLL_MS = 25;
/** After SIGKILL, how long to wait for the group to be gone before giving up (ms). */
const AFTER_KILL_MS = 5000;

/**
 * Whether any process of group `pgid` is still running. A zombie (exited, not yet reaped by its new
 * parent) counts as gone: it can no longer write. Linux: reads /proc; elsewhere `kill(-pgid, 0)`.
 */
async function processGroupAlive(pgid: number): Promise<boolean> {
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
async function terminateProcessGroup(pgid: number, graceMs: number): Promise<boolean> {
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pgid, sig);
    } catch {
      // ESRCH: already gone.
    }
  };
  const waitGone = async (ms: number) => {
    const until = performance.now() + ms;
    for (;;) {
      if (!(await processGroupAlive(pgid))) return true;
      if (performance.now() >= until) return false;
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
 * The command runs in a process group of its own (`detached`) and, in `pid-namespace` isolation
 * (see {@link TransportIsolation}), in a PID namespace of its own. The copy settles only once the
 * command and everything it started is gone: on abort the group gets SIGTERM, then SIGKILL after
 * `killGraceMs`, and the promise rejects with OperationAbortedError after that, so the caller's
 * cleanup of the partial file never races a copy still writing it. A command that exits leaving
 * children behind (a wrapper that backgrounded or daemonized its copier) has them ended the same way
 * before the result counts, and a destination another process still holds open is refused
 * (retryable BBCPError) rather than verified while it may change. The leader's exit is what counts,
 * not the closing of its stderr pipe (a leftover child could hold that open).
 *
 * A program that cannot be started is a configuration problem, never an operation's fault: at
 * construction it is refused (ConfigurationError naming `transport.command`); at run time (the
 * program vanished, lost its execute bit, or a wrapper exits 126/127) the copy fails with a
 * retryable BBCPError `TRANSPORT_COMMAND_UNAVAILABLE` and `onUnavailable` is told.
 *
 * @throws ConfigurationError when the argv lacks `{source}`/`{destination}`, its program is not an
 *   executable file (in PATH, or at the path given), or `pid-namespace` is demanded where no PID
 *   namespace can be created.
 */
export function createCommandTransport(options: CommandTransportOptions): Transport & {
  readonly isolation: TransportIsolation;
} {
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
  if (findExecutable(program) === undefined) {
    throw new ConfigurationError(
      `transport.command: program ${JSON.stringify(program)} not found or not executable (${program.includes('/') ? 'no executable file at that path' : 'looked up in PATH'}): install it or fix transport.command`,
      { context: { program } },
    );
  }
  const wanted = options.isolation ?? 'auto';
  const namespaceFlags = wanted === 'process-group' ? undefined : probePidNamespace();
  if (wanted === 'pid-namespace' && namespaceFlags === undefined) {
    throw new ConfigurationError(
      'transport.isolation is "pid-namespace" but `unshare --pid --fork --kill-child` fails here (also with --user --map-root-user): install util-linux, allow user namespaces, or use "process-group"',
    );
  }
  const isolation: TransportIsolation = namespaceFlags === undefined ? 'process-group' : 'pid-namespace';
  const nonRetryable = new Set(options.nonRetryableExitCodes ?? []);
  const graceMs = options.killGraceMs ?? 5000;
  let unavailable = false;
  /** A retryable configuration error, reported to `onUnavailable` once per outage. */
  const notStarted = (why: string, cause?: unknown, context: Record<string, unknown> = {}) => {
    const e = new BBCPError(
      `transport.command: ${program} could not be started: ${why} (a configuration problem: install it or fix transport.command; the operation is retried)`,
      {
        code: TRANSPORT_COMMAND_UNAVAILABLE,
        retryable: true,
        ...(cause !== undefined && { cause }),
        context: { program, ...context },
      },
    );
    if (!unavailable) {
      unavailable = true;
      options.onUnavailable?.(e);
    }
    return e;
  };
  return {
    name: `command:${program}`,
    isolation,
    async copy(from, to, { signal, onBytes }) {
      signal.throwIfAborted();
      await mkdir(dirname(to), { recursive: true });
      signal.throwIfAborted();
      const argv = args.map((a) => a.replaceAll('{source}', from).replaceAll('{destination}', to));
      // Inside the namespace a missing program is the init shell's exit 127: find it here, so it
      // is the same configuration error as a spawn failure without a namespace.
      if (namespaceFlags !== undefined && findExecutable(program) === undefined) {
        throw notStarted('not found or not executable');
      }
      const token = randomUUID();
      const [file, ...fileArgs] =
        namespaceFlags === undefined
          ? [program, ...argv]
          : ['unshare', ...namespaceFlags, '--', ...NAMESPACE_INIT, program, ...argv];
      const child = spawn(file, fileArgs, {
        stdio: ['ignore', 'ignore', 'pipe'],
        detached: true,
        env: { ...process.env, [RUN_MARKER]: token },
      });
      // Handlers first, before any await: a spawn failure (ENOENT) arrives as 'error'.
      const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, error }));
        child.once('exit', (c) => resolve({ code: c }));
      });
      const stderrClosed = new Promise<void>((resolve) => child.stderr.once('close', resolve));
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
      // The group, then whatever left it carrying this run's marker.
      const endAll = () =>
        (ended ??= (pgid === undefined ? Promise.resolve(true) : terminateProcessGroup(pgid, graceMs)).then(
          async (gone) => (await killMarked(token)) && gone,
        ));
      let onAbort = (): void => undefined;
      try {
        const result = await new Promise<{ code: number | null; error?: Error }>((resolve) => {
          void exited.then(resolve);
          // A leader that outlives SIGKILL (uninterruptible sleep) must not hold the task forever.
          onAbort = () =>
            void endAll().then((gone) => {
              if (!gone) resolve({ code: null });
            });
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        });
        // The leader is gone; its group and anything it started go too, before anything settles.
        const gone = await endAll();
        // The last of stderr (bounded: a straggler in process-group mode may have held the pipe).
        await Promise.race([stderrClosed, delay(1000)]);
        child.stderr.destroy();
        if (signal.aborted) {
          throw new OperationAbortedError(`transfer aborted: ${String(signal.reason)}`, {
            cause: result.error ?? signal.reason,
            context: { program, processGroupGone: gone, isolation },
          });
        }
        if (result.error !== undefined) {
          const errno = (result.error as NodeJS.ErrnoException).code;
          if (errno === 'ENOENT' || errno === 'EACCES' || errno === 'ENOEXEC')
            throw notStarted(result.error.message, result.error, { errno });
          throw new BBCPError(`${program} could not be started: ${result.error.message}`, {
            cause: result.error,
            context: { program },
          });
        }
        if (result.code !== null && NOT_STARTED_EXIT_CODES.has(result.code)) {
          throw notStarted(
            `exit ${result.code} (a shell's "cannot execute"/"not found"): ${stderr.trim().split('\n').at(-1) ?? ''}`,
            undefined,
            { exitCode: result.code, stderr },
          );
        }
        if (unavailable) {
          unavailable = false;
          options.onUnavailable?.(undefined);
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
        const holders = await holdersOf(to);
        if (holders.length > 0) {
          throw new BBCPError(
            `${program} exited, but processes ${holders.slice(0, 10).join(', ')} still hold ${to} open: not verifying a file that may still change`,
            { retryable: true, context: { program, holders: holders.slice(0, 10), isolation } },
          );
        }
      } finally {
        signal.removeEventListener('abort', onAbort);
        clearInterval(poll);
      }
    },
  };
}
