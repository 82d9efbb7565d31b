// Real worker processes (node dist/main.js) for end-to-end tests: started with a config file, their
// JSON log lines collected, stopped with real signals. Only processes started here are signalled.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '@ccat/test-support';

export const WORKER_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export interface WorkerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly lines: Record<string, unknown>[];
  readonly stderr: () => string;
  /** Waits for a log line matching `pred`. */
  waitForLine(
    pred: (l: Record<string, unknown>) => boolean,
    timeoutMs?: number,
    message?: string,
  ): Promise<Record<string, unknown>>;
  /** Resolves with the exit code (or signal name) once the process ended. */
  readonly exited: Promise<number | string>;
  signal(sig: NodeJS.Signals): void;
}

export async function startWorker(
  dir: string,
  name: string,
  config: object,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  const child = spawn(process.execPath, [WORKER_MAIN, '--config', file], {
    env: { ...process.env, ...env, CCAT_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: Record<string, unknown>[] = [];
  let buffer = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split('\n');
    buffer = parts.pop() ?? '';
    for (const p of parts) {
      if (!p.trim()) continue;
      try {
        lines.push(JSON.parse(p) as Record<string, unknown>);
      } catch {
        lines.push({ raw: p });
      }
    }
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? sig ?? 'unknown')),
  );
  const wp: WorkerProcess = {
    child,
    pid: child.pid!,
    lines,
    stderr: () => stderr,
    waitForLine: (pred, timeoutMs = 15_000, message = 'log line') =>
      waitFor(() => lines.find(pred), {
        timeoutMs,
        message: `${name}: ${message}; stderr: ${stderr.slice(-500)}`,
      }),
    exited,
    signal: (sig) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    },
  };
  await wp.waitForLine((l) => l['msg'] === 'worker started', 20_000, 'worker started');
  return wp;
}
