import { execFile } from 'node:child_process';
import { access, chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BBCPError, ConfigurationError, OperationAbortedError } from '@ccat/errors';
import { waitFor } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainedPath } from '@ccat/recovery-handlers';
import { copyFile } from '../src/operations/files.js';
import { createCommandTransport, createLocalCopyTransport } from '../src/transports.js';

/** Paths in these tests are built from test constants, not database values. */
const join = (...parts: string[]) => pathJoin(...parts) as ContainedPath;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ccat-transport-'));
  await writeFile(join(dir, 'src.tar'), Buffer.alloc(300_000, 7));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = (signal = new AbortController().signal) => {
  const seen: number[] = [];
  return { signal, onBytes: (n: number) => seen.push(n), seen };
};

describe('transports', () => {
  it('local copy: copies into a new directory and reports bytes', async () => {
    const o = opts();
    await createLocalCopyTransport().copy(
      join(dir, 'src.tar'),
      join(dir, 'a', 'b', 'dst.tar.ccat-partial-0'),
      o,
    );
    expect(await readFile(join(dir, 'a', 'b', 'dst.tar.ccat-partial-0'))).toEqual(
      await readFile(join(dir, 'src.tar')),
    );
    expect(o.seen.at(-1)).toBe(300_000);
  });

  it('command: runs the configured argv with {source} and {destination}', async () => {
    const t = createCommandTransport({ command: ['cp', '{source}', '{destination}'] });
    expect(t.name).toBe('command:cp');
    await t.copy(join(dir, 'src.tar'), join(dir, 'c', 'dst.tar'), opts());
    expect(await readFile(join(dir, 'c', 'dst.tar'))).toEqual(await readFile(join(dir, 'src.tar')));
  });

  it('command: a failing command is a BBCPError with its exit code and stderr; configured codes are not retried', async () => {
    const t = createCommandTransport({
      command: ['sh', '-c', 'echo "bbcp: connection refused by {destination}" >&2; exit 3', '{source}'],
      nonRetryableExitCodes: [1],
    });
    const e = await t.copy(join(dir, 'src.tar'), join(dir, 'd', 'x'), opts()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BBCPError);
    expect(e).toMatchObject({ code: 'BBCP_ERROR', retryable: true, context: { exitCode: 3 } });
    expect((e as BBCPError).message).toMatch(/exited with 3: bbcp: connection refused/);
    const fatal = createCommandTransport({
      command: ['sh', '-c', 'exit 1', '{source}', '{destination}'],
      nonRetryableExitCodes: [1],
    });
    await expect(fatal.copy('x' as ContainedPath, join(dir, 'e', 'y'), opts())).rejects.toMatchObject({
      retryable: false,
      context: { exitCode: 1 },
    });
  });

  it('command: aborting kills the command', async () => {
    const ac = new AbortController();
    const t = createCommandTransport({ command: ['sh', '-c', 'sleep 30', '{source}', '{destination}'] });
    const started = Date.now();
    const p = t.copy('a' as ContainedPath, join(dir, 'f', 'b'), opts(ac.signal));
    setTimeout(() => ac.abort(new Error('lease lost')), 100);
    await expect(p).rejects.toBeInstanceOf(OperationAbortedError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('command: a command line without placeholders is a configuration error', () => {
    expect(() => createCommandTransport({ command: ['rsync', '-a'] })).toThrow(ConfigurationError);
    expect(() => createCommandTransport({ command: [] })).toThrow(ConfigurationError);
  });

  // issue 11 item 3: a child process dies with its task.
  const gone = async (path: string) =>
    access(path).then(
      () => false,
      () => true,
    );
  /** Whether process `pid` runs (a zombie waiting for its reaper does not). */
  const running = async (pid: number) => {
    try {
      const s = await readFile(`/proc/${pid}/stat`, 'utf8');
      return s.slice(s.lastIndexOf(')') + 2)[0] !== 'Z';
    } catch {
      return false;
    }
  };

  it('command: a program that ignores SIGTERM is killed with its group; nothing is written after copy() settles', async () => {
    const t = createCommandTransport({
      command: ['sh', '-c', 'trap "" TERM; sleep 2; cat "$0" > "$1"', '{source}', '{destination}'],
      killGraceMs: 300,
    });
    const dst = join(dir, 'h', 'dst.ccat-partial-0');
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('lease lost')), 300);
    await expect(t.copy(join(dir, 'src.tar'), dst, opts(ac.signal))).rejects.toBeInstanceOf(
      OperationAbortedError,
    );
    // The attempt's cleanup removes its partial; past the moment the program would have written.
    await rm(dst, { force: true });
    await new Promise((r) => setTimeout(r, 2500));
    expect(await gone(dst)).toBe(true);
  });

  it("command: a wrapper's child that does the copy dies with the task too", async () => {
    // The host pid (/proc/self/stat opened by the shell): in a PID namespace `$$` is the inner one.
    const inner = `trap "" TERM; read -r p _ < /proc/self/stat; echo "$p" > "$1.pid"; sleep 2; cat "$0" > "$1"`;
    const t = createCommandTransport({
      command: ['sh', '-c', `sh -c '${inner}' "$0" "$1" & wait`, '{source}', '{destination}'],
      killGraceMs: 300,
    });
    const dst = join(dir, 'i', 'dst.ccat-partial-0');
    const ac = new AbortController();
    const copying = t.copy(join(dir, 'src.tar'), dst, opts(ac.signal));
    const settled = copying.catch((e: unknown) => e);
    const pid = Number(
      await waitFor(async () => (await readFile(`${dst}.pid`, 'utf8').catch(() => '')).trim() || undefined, {
        timeoutMs: 10_000,
      }),
    );
    ac.abort(new Error('lease lost'));
    expect(await settled).toBeInstanceOf(OperationAbortedError);
    // Settled only once the group is gone: the copier is dead and wrote nothing, now and later.
    expect(await running(pid)).toBe(false);
    expect(await gone(dst)).toBe(true);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await gone(dst)).toBe(true);
  });

  // issue 15 (deployment): a configuration problem is never an operation's permanent failure.
  it('command: a program not in PATH (or not executable at its path) is refused at construction, naming transport.command', () => {
    for (const program of ['rsync-not-installed', join(dir, 'src.tar'), '/nonexistent/bbcp']) {
      let thrown: unknown;
      try {
        createCommandTransport({ command: [program, '--partial', '{source}', '{destination}'] });
      } catch (e) {
        thrown = e;
      }
      expect(thrown).toBeInstanceOf(ConfigurationError);
      const message = (thrown as Error).message;
      expect(message).toContain('transport.command');
      expect(message).toContain(program);
      expect(message).not.toContain('\n');
    }
  });

  it('command: a program that vanishes or loses its execute bit at run time is a retryable configuration error, reported once per outage', async () => {
    const bin = join(dir, 'bin');
    await mkdir(bin, { recursive: true });
    const program = join(bin, 'mycopy');
    await writeFile(program, '#!/bin/sh\ncat "$1" > "$2"\n', { mode: 0o755 });
    const told: (string | undefined)[] = [];
    for (const isolation of ['process-group', 'auto'] as const) {
      const t = createCommandTransport({
        command: [program, '{source}', '{destination}'],
        isolation,
        nonRetryableExitCodes: [126, 127],
        onUnavailable: (p) => told.push(p?.code),
      });
      await chmod(program, 0o644);
      for (const attempt of [1, 2]) {
        const e = await t
          .copy(join(dir, 'src.tar'), join(dir, 'k', `x${attempt}`), opts())
          .catch((x: unknown) => x);
        expect(e).toBeInstanceOf(BBCPError);
        expect(e).toMatchObject({ code: 'TRANSPORT_COMMAND_UNAVAILABLE', retryable: true });
        expect((e as Error).message).toContain('transport.command');
      }
      await chmod(program, 0o755);
      await t.copy(join(dir, 'src.tar'), join(dir, 'k', 'ok'), opts());
      await rm(program);
      const e = await t.copy(join(dir, 'src.tar'), join(dir, 'k', 'y'), opts()).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'TRANSPORT_COMMAND_UNAVAILABLE', retryable: true });
      await writeFile(program, '#!/bin/sh\ncat "$1" > "$2"\n', { mode: 0o755 });
    }
    // Once per outage: told at the first failure and when it started again, twice per transport.
    expect(told).toEqual([
      'TRANSPORT_COMMAND_UNAVAILABLE',
      undefined,
      'TRANSPORT_COMMAND_UNAVAILABLE',
      'TRANSPORT_COMMAND_UNAVAILABLE',
      undefined,
      'TRANSPORT_COMMAND_UNAVAILABLE',
    ]);
  });

  it("command: a wrapper's exit 126/127 (its shell cannot execute or find the copier) is the same configuration error", async () => {
    const t = createCommandTransport({
      command: ['sh', '-c', 'rsync-not-installed "$0" "$1"', '{source}', '{destination}'],
      nonRetryableExitCodes: [127],
    });
    await expect(t.copy(join(dir, 'src.tar'), join(dir, 'l', 'b'), opts())).rejects.toMatchObject({
      code: 'TRANSPORT_COMMAND_UNAVAILABLE',
      retryable: true,
      context: { exitCode: 127 },
    });
  });

  // issue 11 item 4: a missing source rejects; its stream's 'error' never goes unhandled.
  it('copyFile from a missing source rejects with ENOENT (in this process)', async () => {
    await expect(copyFile(join(dir, 'missing'), join(dir, 'k', 'x.ccat-partial-0'))).rejects.toMatchObject({
      code: 'ENOENT',
    });
    await expect(
      createLocalCopyTransport().copy(join(dir, 'missing'), join(dir, 'k', 'y.ccat-partial-0'), opts()),
    ).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('copyFile from a missing source rejects with ENOENT as a script: the process does not crash', async () => {
    const files = fileURLToPath(new URL('../dist/operations/files.js', import.meta.url));
    expect((await stat(files)).isFile()).toBe(true);
    const script = `
      import { copyFile } from ${JSON.stringify(files)};
      const target = ${JSON.stringify(join(dir, 'script'))} + '/' + process.pid + '/out.ccat-partial-0';
      copyFile('/ccat-missing-source', target).then(
        () => console.log('resolved'),
        (e) => console.log('rejected', e.code),
      );`;
    const runs = await Promise.all(
      Array.from({ length: 5 }, () =>
        promisify(execFile)(process.execPath, ['--input-type=module', '-e', script]).then(
          (r) => r.stdout.trim(),
          (e: { code?: number; stderr?: string }) => `exit ${e.code}: ${e.stderr?.split('\n')[0] ?? ''}`,
        ),
      ),
    );
    expect(runs).toEqual(Array.from({ length: 5 }, () => 'rejected ENOENT'));
  });
});
