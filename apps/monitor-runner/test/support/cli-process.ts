// Runs the built CLI as a real process (node dist/cli.js …) and collects its exit code and output.
// Only the process started here is ever killed, and only when it outlives its deadline.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { commandEnv as cliEnv } from '@ccat/test-support';
import { expect } from 'vitest';
import { runCli } from '../../src/cli/main.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function runCliProcess(
  args: readonly string[],
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: cliEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`ccat-recovery ${args.join(' ')} did not exit within ${timeoutMs} ms; stderr: ${stderr}`),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * The same command line through runCli in this process: the code path of the process minus its
 * start-up, for the variants of a command whose process form a test already covers.
 */
export async function runCliInProcess(args: readonly string[], env: Record<string, string>): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const code = await runCli({
    argv: args,
    env,
    operator: 'tester',
    out: { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`) },
  });
  return { code, signal: null, stdout, stderr };
}

/**
 * The one JSON document a `--json` run printed (fails loudly when stdout holds anything else). Typed
 * loosely on purpose: the tests probe it field by field with their expectations.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseJsonOutput(run: CliRun): Record<string, any> {
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return JSON.parse(run.stdout) as Record<string, any>;
  } catch (e) {
    throw new Error(
      `stdout is not one JSON document (${(e as Error).message}):\n${run.stdout}\nstderr:\n${run.stderr}`,
      { cause: e },
    );
  }
}

/** Asserts the exit code; when it is wrong, the failure shows the output that says why. */
export function expectExit(run: CliRun, code: number): void {
  expect({ code: run.code, stderr: run.stderr, stdout: run.stdout.slice(0, 2000) }).toMatchObject({ code });
}
