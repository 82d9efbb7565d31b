// Real processes for end-to-end tests: started with node, their JSON log lines collected, stopped
// with real signals. Only processes started here are ever signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor } from './wait.js';

export interface JsonProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line, parsed (lines that are not JSON as `{ raw }`). */
  readonly lines: Record<string, unknown>[];
  /** Every stdout line as written (to check what parsing hides, such as duplicate keys). */
  readonly raw: string[];
  stderr(): string;
  /** Waits for a line matching `pred`, failing with the process's stderr tail. */
  waitForLine(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
    what?: string,
  ): Promise<Record<string, unknown>>;
  /** The exit code, or the signal's name. */
  readonly exited: Promise<number | string>;
  /** Sends a signal if the process still runs. */
  signal(sig: NodeJS.Signals): void;
}

export interface StartOptions {
  readonly name: string;
  readonly script: string;
  readonly args?: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** false: the child gets `env` alone, not this process's environment (as a container would). Default true. */
  readonly inheritEnv?: boolean;
  /** The child's working directory (default this process's). */
  readonly cwd?: string;
  /** Resolve once a line matches (e.g. `msg === 'worker started'`). */
  readonly ready?: (l: Record<string, unknown>) => boolean;
  readonly readyTimeoutMs?: number;
}

export async function startJsonProcess(o: StartOptions): Promise<JsonProcess> {
  const child = spawn(process.execPath, [o.script, ...(o.args ?? [])], {
    env: o.inheritEnv === false ? { ...o.env } : { ...process.env, ...o.env },
    ...(o.cwd !== undefined && { cwd: o.cwd }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  const raw: string[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      raw.push(p);
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        lines.push({ raw: p });
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-20_000);
  });
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  );
  const p: JsonProcess = {
    name: o.name,
    child,
    pid: child.pid!,
    lines,
    raw,
    stderr: () => stderr,
    waitForLine: (pred, timeoutMs = 15_000, what = 'log line') =>
      waitFor(() => lines.find(pred), {
        timeoutMs,
        message: `${o.name}: ${what}; stderr: ${stderr.slice(-500)}`,
      }),
    exited,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
  if (o.ready) {
    // A process that exits first fails at once, with its stderr, rather than at the ready timeout.
    let ready = false;
    const readyLine = p.waitForLine(o.ready, o.readyTimeoutMs ?? 20_000, 'ready');
    readyLine.catch(() => undefined);
    const isReady = o.ready;
    const died = exited.then((code) => {
      if (!ready && !lines.some(isReady))
        throw new Error(`${o.name} exited (${code}) before it was ready; stderr: ${stderr.slice(-1000)}`);
    });
    died.catch(() => undefined);
    await Promise.race([readyLine, died.then(() => readyLine)]);
    ready = true;
  }
  return p;
}
