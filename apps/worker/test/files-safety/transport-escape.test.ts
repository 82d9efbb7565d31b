// Adversary finding 5: the command transport's "settles only when the group is gone" was per process
// group. A program that puts a child in a new session (setsid, as daemonizing copiers do) escaped it:
// (a) abort: copy() rejected, the caller removed the partial, and the escaped child wrote it again;
// (b) success: the leader exited 0, copy() resolved, the caller verified and published, and the
//     escaped child, holding the file open, wrote into the published final output.
// Both isolation modes are run: `pid-namespace` (the kernel kills the whole namespace) and
// `process-group` (the group, then every process carrying the run's marker variable, and a
// destination still held open is refused). The children report their pid as the host sees it
// (/proc/self/stat opened by the shell itself), so cleanup never signals a stranger.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { join as pathJoin } from 'node:path';
import { BBCPError, OperationAbortedError } from '@ccat/errors';
import type { ContainedPath } from '@ccat/recovery-handlers';
import { waitFor } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandTransport, probePidNamespace, type TransportIsolation } from '../../src/transports.js';

const join = (...parts: string[]) => pathJoin(...parts) as ContainedPath;

let dir: string;
const pids: number[] = [];
beforeAll(async () => {
  dir = await mkdtemp(pathJoin(tmpdir(), 'ccat-transport-escape-'));
  await writeFile(join(dir, 'src.tar'), Buffer.alloc(100_000, 7));
});
afterAll(async () => {
  // End only what this test started (the escaped children wrote their host pids).
  for (const p of pids) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});
const exists = (p: string) =>
  stat(p).then(
    () => true,
    () => false,
  );
const running = (pid: number) =>
  readFile(`/proc/${pid}/stat`, 'utf8').then(
    (s) => s.slice(s.lastIndexOf(')') + 2).split(' ')[0] !== 'Z',
    () => false,
  );
const sha = async (p: string) =>
  createHash('sha256')
    .update(await readFile(p))
    .digest('hex');
/** Shell: write this shell's host pid to "$2". */
const HOST_PID = 'read -r p _ < /proc/self/stat; echo "$p" > "$2"';
/** Shell: wait until the child wrote its pid file "$1" (gates, not sleeps). */
const AWAIT_PID = (file: string) => `while [ ! -s "${file}" ]; do sleep 0.05; done`;
const pidFrom = async (file: string) =>
  Number(
    await waitFor(async () => (await readFile(file, 'utf8').catch(() => '')).trim() || undefined, {
      timeoutMs: 10_000,
    }),
  );

it('the PID-namespace probe succeeds on this machine (root, util-linux unshare)', () => {
  // Where it cannot (no unshare, no user namespaces), `auto` falls back to process-group mode; the
  // process-group cases below still run.
  expect(probePidNamespace()).toBeDefined();
});

describe.each<TransportIsolation>(['pid-namespace', 'process-group'])('isolation %s', (isolation) => {
  it('abort: a setsid child is gone when copy() rejects; the removed partial stays removed', async () => {
    const to = join(dir, `a-${isolation}`, 'dst.tar.ccat-partial-0');
    const pidFile = join(dir, `a-${isolation}.pid`);
    const t = createCommandTransport({
      command: [
        'sh',
        '-c',
        `setsid sh -c '${HOST_PID}; sleep 1.5; cat "$0" > "$1"' "$0" "$1" "${pidFile}" </dev/null >/dev/null 2>&1 & sleep 30`,
        '{source}',
        '{destination}',
      ],
      killGraceMs: 200,
      isolation,
    });
    expect(t.isolation).toBe(isolation);
    const c = new AbortController();
    const copying = t
      .copy(join(dir, 'src.tar'), to, { signal: c.signal, onBytes: () => undefined })
      .catch((e: unknown) => e);
    const pid = await pidFrom(pidFile);
    pids.push(pid);
    c.abort(new Error('lease lost'));
    expect(await copying).toBeInstanceOf(OperationAbortedError);
    expect(await running(pid), 'the escaped child outlived copy()').toBe(false);
    // The caller's cleanup: remove the partial (it may not exist yet). Past the moment the child
    // would have written, it is still absent.
    await rm(to, { force: true });
    await new Promise((r) => setTimeout(r, 2000));
    expect(await exists(to), 'the partial reappeared after copy() settled').toBe(false);
  });

  it('success: a setsid helper holding the destination open is gone before copy() resolves', async () => {
    const partial = join(dir, `b-${isolation}`, 'dst.tar.ccat-partial-0');
    const final = join(dir, `b-${isolation}`, 'dst.tar');
    const pidFile = join(dir, `b-${isolation}.pid`);
    const t = createCommandTransport({
      // The copy is done by the leader; a helper it daemonized holds the destination open and writes later.
      command: [
        'sh',
        '-c',
        `setsid sh -c '${HOST_PID}; exec 3>>"$1"; sleep 1.5; echo CORRUPT >&3' "$0" "$1" "${pidFile}" </dev/null >/dev/null 2>&1 & ${AWAIT_PID(pidFile)}; cat "$0" > "$1"`,
        '{source}',
        '{destination}',
      ],
      killGraceMs: 200,
      isolation,
    });
    await t.copy(join(dir, 'src.tar'), partial, {
      signal: new AbortController().signal,
      onBytes: () => undefined,
    });
    const pid = await pidFrom(pidFile);
    pids.push(pid);
    expect(await running(pid), 'the helper outlived copy()').toBe(false);
    // The operation verifies what arrived, then publishes (rename into place).
    const verified = await sha(partial);
    expect(verified).toBe(await sha(join(dir, 'src.tar')));
    await rename(partial, final);
    await new Promise((r) => setTimeout(r, 2000));
    expect(await sha(final), 'the published, verified output changed afterwards').toBe(verified);
  });

  it('a child that keeps the stderr pipe open does not hold copy() until it exits', async () => {
    const to = join(dir, `c-${isolation}`, 'dst.tar.ccat-partial-0');
    const pidFile = join(dir, `c-${isolation}.pid`);
    const t = createCommandTransport({
      command: [
        'sh',
        '-c',
        `setsid sh -c '${HOST_PID}; sleep 30' "$0" "$1" "${pidFile}" </dev/null >/dev/null & ${AWAIT_PID(pidFile)}; cat "$0" > "$1"`,
        '{source}',
        '{destination}',
      ],
      killGraceMs: 200,
      isolation,
    });
    const started = Date.now();
    await t.copy(join(dir, 'src.tar'), to, {
      signal: new AbortController().signal,
      onBytes: () => undefined,
    });
    const pid = await pidFrom(pidFile);
    pids.push(pid);
    expect(await running(pid)).toBe(false);
    // Well under the child's 30 s: copy() did not wait for the pipe.
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('isolation process-group: what the marker cannot see', () => {
  it('a helper that cleared its environment but holds the destination open: the copy is refused, not verified', async () => {
    const to = join(dir, 'd', 'dst.tar.ccat-partial-0');
    const pidFile = join(dir, 'd.pid');
    const t = createCommandTransport({
      command: [
        'sh',
        '-c',
        `cat "$0" > "$1"; env -i setsid sh -c '${HOST_PID}; exec 3>>"$1"; sleep 30' "$0" "$1" "${pidFile}" </dev/null >/dev/null 2>&1 & ${AWAIT_PID(pidFile)}`,
        '{source}',
        '{destination}',
      ],
      killGraceMs: 200,
      isolation: 'process-group',
    });
    const e = await t
      .copy(join(dir, 'src.tar'), to, { signal: new AbortController().signal, onBytes: () => undefined })
      .catch((x: unknown) => x);
    pids.push(await pidFrom(pidFile));
    expect(e).toBeInstanceOf(BBCPError);
    expect((e as Error).message).toMatch(/still hold .* open: not verifying/);
    expect(e).toMatchObject({ retryable: true });
  });
});

describe('unprivileged', () => {
  // Needs root to drop to `nobody` (setpriv); the CI runs as root. The repository may sit in a
  // directory `nobody` cannot enter (a CI clone under a private temporary directory), so this runs
  // the kernel mechanism the transport relies on rather than the transport's module: as `nobody`,
  // plain `unshare --pid` (the probe's first try) is refused, and the probe's fallback flags start a
  // PID namespace whose daemonized (setsid) child dies when the command ends.
  it("as an unprivileged user only the probe's --user --map-root-user flags work, and a setsid helper still dies with the command", async () => {
    if (process.getuid?.() !== 0)
      throw new Error('this test drops privileges with setpriv and must run as root (the CI does)');
    const work = await mkdtemp(pathJoin(tmpdir(), 'ccat-unpriv-'));
    await chmod(work, 0o777);
    const pidFile = pathJoin(work, 'pid');
    const asNobody = (args: string[]) =>
      promisify(execFile)('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', ...args], {
        cwd: work,
        timeout: 25_000,
      });
    try {
      await expect(asNobody(['unshare', '--pid', '--fork', '--kill-child', 'true'])).rejects.toThrow();
      const flags = ['--user', '--map-root-user', '--pid', '--fork', '--kill-child'];
      await asNobody([
        'unshare',
        ...flags,
        'sh',
        '-c',
        `setsid sh -c 'read -r p _ < /proc/self/stat; echo "$p" > "$0"; sleep 30' "${pidFile}" </dev/null >/dev/null 2>&1 & while [ ! -s "${pidFile}" ]; do sleep 0.05; done`,
      ]);
      // The helper wrote its pid as seen inside the namespace; find it on the host by its command line.
      const alive = await waitFor(
        async () => {
          const r = await promisify(execFile)('pgrep', ['-u', '65534', '-f', 'sleep 30']).catch(() => ({
            stdout: '',
          }));
          return r.stdout.trim() === '' ? 'gone' : undefined;
        },
        { timeoutMs: 5000, message: 'the setsid helper outlived its PID namespace' },
      );
      expect(alive).toBe('gone');
      expect(probePidNamespace()).toBeDefined();
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
