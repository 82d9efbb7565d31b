// How bytes move between sites. Local copy by default; a command transport runs a configured
// rsync/bbcp-style command line. Either way the data_transfer operation verifies the checksum of
// what arrived: a transport is trusted to copy, not to be right.
import { spawn } from 'node:child_process';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { BBCPError, ConfigurationError, OperationAbortedError } from '@ccat/errors';
import { copyFile } from './operations/files.js';

export interface Transport {
  readonly name: string;
  /** Copies `from` to `to` (a partial path; its parent may not exist yet). */
  copy(
    from: string,
    to: string,
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
}

/** Runs an external copy command; its failure is a BBCPError carrying the exit code and stderr tail. */
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
  return {
    name: `command:${program}`,
    async copy(from, to, { signal, onBytes }) {
      await mkdir(dirname(to), { recursive: true });
      const argv = args.map((a) => a.replaceAll('{source}', from).replaceAll('{destination}', to));
      const child = spawn(program, argv, {
        stdio: ['ignore', 'ignore', 'pipe'],
        signal,
        killSignal: 'SIGTERM',
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      const poll = setInterval(() => {
        stat(to).then(
          (s) => onBytes(s.size),
          () => undefined,
        );
      }, options.progressIntervalMs ?? 1000);
      try {
        const code = await new Promise<number | null>((resolve, reject) => {
          child.on('error', reject);
          child.on('close', (c) => resolve(c));
        });
        if (code !== 0) {
          throw new BBCPError(
            `${program} exited with ${code ?? 'a signal'}: ${stderr.trim().split('\n').at(-1) ?? ''}`,
            {
              retryable: code === null || !nonRetryable.has(code),
              context: { exitCode: code, stderr, program },
            },
          );
        }
      } catch (e) {
        if (signal.aborted)
          throw new OperationAbortedError(`transfer aborted: ${String(signal.reason)}`, { cause: e });
        throw e;
      } finally {
        clearInterval(poll);
      }
    },
  };
}
