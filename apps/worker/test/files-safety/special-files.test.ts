// Adversary finding 7: a FIFO where a file is expected wedged the worker. Opening a FIFO for reading
// blocks a libuv thread-pool thread until a writer appears, and an AbortSignal cannot unblock it:
// four such opens (the default pool) left every later file call of the process queued forever. Every
// source is now opened O_NONBLOCK|O_NOFOLLOW and checked with fstat: anything but a regular file is
// refused with a non-retryable ValidationError before a byte is read.
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { ValidationError } from '@ccat/errors';
import { hashFile, openRegularFile, type ContainedPath } from '@ccat/recovery-handlers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFile, extractTar, listTar } from '../../src/operations/files.js';

const join = (...parts: string[]) => pathJoin(...parts) as ContainedPath;
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(pathJoin(tmpdir(), 'ccat-special-'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
  await writeFile(join(dir, 'ok'), 'fine');
  await symlink(join(dir, 'ok'), join(dir, 'link'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('sources that are not regular files', () => {
  it('eight reads of a FIFO are refused at once, and the thread pool stays free', async () => {
    const fifo = join(dir, 'fifo');
    const refusals = await Promise.all([
      ...Array.from({ length: 5 }, () => hashFile(fifo).catch((e: unknown) => e)),
      copyFile(fifo, join(dir, 'out', 'x.ccat-partial-0')).catch((e: unknown) => e),
      extractTar(fifo, join(dir, 'tree.ccat-partial-0')).catch((e: unknown) => e),
      listTar(fifo).catch((e: unknown) => e),
    ]);
    for (const e of refusals) {
      expect(e).toBeInstanceOf(ValidationError);
      expect(e).toMatchObject({ code: 'VALIDATION_FAILED', retryable: false });
      expect((e as Error).message).toMatch(/is a FIFO, not a regular file/);
    }
    // An ordinary file still hashes: nothing is left blocked in the pool.
    expect((await hashFile(join(dir, 'ok'))).size).toBe(4);
  });

  it('a symlink where a file is expected is refused, not followed', async () => {
    await expect(openRegularFile(join(dir, 'link'))).rejects.toThrow(
      /is a symbolic link, not a regular file/,
    );
    await expect(hashFile(join(dir, 'link'))).rejects.toBeInstanceOf(ValidationError);
  });

  it('a directory where a file is expected is refused', async () => {
    await expect(hashFile(dir as ContainedPath)).rejects.toThrow(/is a directory, not a regular file/);
  });
});
