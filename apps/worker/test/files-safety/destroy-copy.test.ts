// Adversary finding 3, the race half: a file that arrives in a raw-files directory after the
// deletion's checks is never removed: destroyCopy unlinks only the files it was given and removes a
// directory only when it is empty. And nothing is removed without the fenced check.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OperationRef } from '@ccat/db';
import { LeaseLostError } from '@ccat/errors';
import { containedPath } from '@ccat/recovery-handlers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { destroyCopy, type Fence } from '../../src/operations/fenced-files.js';

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccat-destroy-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

const ref: OperationRef = { type: 'deletion', id: '1', attempt: 0 };
const fence = (onCheck: () => Promise<void> = () => Promise.resolve()): Fence => ({
  ref,
  signal: new AbortController().signal,
  assertLease: onCheck,
});

describe('destroyCopy', () => {
  it('keeps a file that arrived after the checks, and the directories holding it', async () => {
    const dir = containedPath(root, 'pkg-a');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'a.fits'), 'a');
    await writeFile(join(dir, 'b.fits'), 'b');
    const files = [containedPath(dir, 'sub/a.fits'), containedPath(dir, 'b.fits')];
    const directories = [dir, containedPath(dir, 'sub')];
    // The late file lands right at the fenced check, after the caller listed what to delete.
    const r = await destroyCopy(
      fence(() => writeFile(join(dir, 'sub', 'late.fits'), 'late')),
      root,
      files,
      directories,
    );
    expect(r).toEqual({ unlinked: 2, kept: [containedPath(dir, 'sub'), dir] });
    expect(await readdir(join(dir, 'sub'))).toEqual(['late.fits']);
  });

  it('removes the emptied directories', async () => {
    const dir = containedPath(root, 'pkg-b');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'a.fits'), 'a');
    const r = await destroyCopy(
      fence(),
      root,
      [containedPath(dir, 'sub/a.fits')],
      [dir, containedPath(dir, 'sub')],
    );
    expect(r).toEqual({ unlinked: 1, kept: [] });
    expect(await readdir(root)).not.toContain('pkg-b');
  });

  it('removes nothing when the fenced check is refused', async () => {
    const dir = containedPath(root, 'pkg-c');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'a.fits'), 'a');
    await expect(
      destroyCopy(
        fence(() => Promise.reject(new LeaseLostError('refused'))),
        root,
        [containedPath(dir, 'a.fits')],
        [dir],
      ),
    ).rejects.toBeInstanceOf(LeaseLostError);
    expect(await readdir(dir)).toEqual(['a.fits']);
  });
});
