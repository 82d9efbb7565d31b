// The only file actions an operation may take that destroy or publish: every operation goes through
// here (the worker's ESLint config forbids node:fs, node:path, node:child_process and tar in the
// operations outside this file and files.ts, and lets only deletion.ts import `destroyCopy`).
//
// FILES ARE FENCED LIKE ROWS (DESIGN §4). Two kinds of action, and a rule for each:
//
// - PUBLISH (every operation's final output: archives, transfers, unpacked trees). A final output is
//   only ever *replaced by a copy this attempt verified*, never destroyed: `publish` renames the
//   attempt's own partial into place right after a fenced check (the AbortSignal is not aborted and a
//   fenced statement, `updateProgress`: `WHERE id AND attempt = k AND status = 'in_progress'`,
//   touched its row). A directory that finds a final directory in place moves that one to the
//   attempt's tomb first (renames only; put back if the partial turns out to be gone, e.g. removed
//   by the monitor's cleanup after this attempt was recovered), and removes the tomb only after a
//   further fenced check; when that check is refused the tomb stays for cleanup of attempts <= k.
//   The window between a check's answer and the renames (a process stopped there, then resumed
//   after a newer attempt completed) is harmless *for publish*: the stale attempt can only put its
//   own verified copy in place, so a verified output is there either way. A damaged output is
//   therefore never removed by itself: the attempt writes a good copy and publishes over it. What
//   remains: between the two renames of a swap (two system calls) the final name is briefly absent,
//   and the monitor's cleanup of attempts >= k running exactly then would remove the tomb holding it.
// - DESTROY (`destroyCopy`, for the deletion operation only). In that same window a destroy would
//   remove what a newer attempt published; destroy is therefore allowed only for what no newer
//   attempt re-creates: a source or buffer copy whose deletion was checked (a newer attempt of the
//   same deletion wants the same). It unlinks the copy's files one by one and removes directories
//   only when empty, so a file that arrives after the checks is never removed.
//
// Before acting, both check that the real path of the target's parent lies inside the real path of
// its location root (a symlink planted on the way is refused with a ValidationError, nothing touched).
// An attempt that was aborted or whose check is refused never removes or replaces a final output: it
// throws, and its failure path removes only partials (`<final>.ccat-partial-<n>`, n <= k), whose
// marker no database value may contain (containedPath refuses it).
import { lstat, mkdir, realpath, rename, rm, rmdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ValidationError } from '@ccat/errors';
import { tombPath, type ContainedPath } from '@ccat/recovery-handlers';
import type { OperationContext } from './types.js';

/** What a fenced file action needs of the running attempt. */
export type Fence = Pick<OperationContext, 'ref' | 'signal' | 'assertLease'>;

const PARTIAL = /\.ccat-partial-(\d{1,10})(?:\.old)?$/;

/** Throws unless the attempt still holds its row: not aborted, and the fenced statement applied. */
async function fencedCheck(fence: Fence): Promise<void> {
  fence.signal.throwIfAborted();
  await fence.assertLease();
  fence.signal.throwIfAborted();
}

const code = (e: unknown) => (e as NodeJS.ErrnoException).code;
const inside = (real: string, realRoot: string) => real === realRoot || real.startsWith(`${realRoot}/`);

/**
 * Throws a non-retryable ValidationError unless the real path (symlinks resolved) of `path`'s parent
 * (its nearest existing ancestor, when the parent does not exist yet) lies inside the real path of
 * `root`. Call it before reading a source and before any action on a target: a symlink planted in a
 * location (e.g. `<destination>/unpacked` pointing elsewhere) would otherwise carry the action out of
 * the root. `path` itself may be a symlink: renames and unlinks act on the link, and files.ts opens
 * with O_NOFOLLOW. A root that does not exist is refused with its ENOENT (nothing to act on).
 */
export async function assertInsideRoot(root: string, path: ContainedPath): Promise<void> {
  const realRoot = await realpath(root);
  let parent = dirname(path);
  for (;;) {
    try {
      const real = await realpath(parent);
      if (inside(real, realRoot)) return;
      throw new ValidationError(
        `${JSON.stringify(path.slice(-200))} resolves outside its location root ${JSON.stringify(root)} (through ${JSON.stringify(real.slice(-200))}); nothing was touched`,
        { context: { path: path.slice(-200), root, resolved: real.slice(-200) } },
      );
    } catch (e) {
      if ((code(e) !== 'ENOENT' && code(e) !== 'ENOTDIR') || parent.length <= root.length) throw e;
      parent = dirname(parent);
    }
  }
}

/** Where a fenced action acts: a contained path and the location root it must stay inside. */
export interface Target {
  readonly root: string;
  readonly path: ContainedPath;
}

/**
 * Renames this attempt's finished partial output `partial` to `final.path` after a fenced check (see
 * the comment at the top). A file replaces what is there atomically; a directory that finds a final
 * directory in place moves it to this attempt's tomb first (renames only), and removes the tomb only
 * after a further fenced check (when refused, the tomb stays for cleanup of attempts <= k, and the
 * output in place is this attempt's verified copy). When the partial is gone (removed by cleanup
 * after this attempt was recovered), nothing is moved, or what was moved is put back.
 *
 * @throws ValidationError when `partial` is not this attempt's, or a path leaves its root (nothing moved).
 * @throws LeaseLostError / the abort reason when the attempt no longer holds its row.
 */
export async function publish(fence: Fence, partial: ContainedPath, final: Target): Promise<void> {
  assertOwnPartial(fence, partial);
  // A location root that does not exist yet is created (it is the configured root itself).
  await mkdir(final.root, { recursive: true });
  await assertInsideRoot(final.root, final.path);
  await mkdir(dirname(final.path), { recursive: true });
  await assertInsideRoot(final.root, final.path);
  await fencedCheck(fence);
  try {
    await rename(partial, final.path);
    return;
  } catch (e) {
    if (!['ENOTEMPTY', 'EEXIST', 'ENOTDIR', 'EISDIR'].includes(code(e) ?? '')) throw e;
  }
  // A directory cannot replace a non-empty directory or a non-directory (e.g. a planted symlink), nor
  // a file a directory: set the old one aside (renames only; a symlink is moved, never followed) and swap.
  const tomb = tombPath(final.path, fence.ref.attempt);
  await rm(tomb, { recursive: true, force: true });
  await fencedCheck(fence);
  // The partial may be gone: a stale attempt's partials are removed by the monitor's cleanup once
  // it was recovered. Then nothing is moved; and if it vanishes between these renames, what was in
  // place is put back.
  await lstat(partial);
  await rename(final.path, tomb);
  try {
    await rename(partial, final.path);
  } catch (e) {
    await rename(tomb, final.path).catch(() => undefined);
    throw e;
  }
  await fencedCheck(fence);
  await rm(tomb, { recursive: true, force: true });
}

/**
 * Destroys a checked source or buffer copy (deletion only; see the comment at the top): after one
 * fenced check, unlinks each of `files` (a symlink is unlinked, never followed; a missing file is
 * fine), then removes each of `directories` only if it is empty, deepest first. Nothing else is
 * removed: a file that appeared after the caller's checks stays, with its directories.
 *
 * @returns how many files were unlinked, and the directories left because they were not empty.
 * @throws ValidationError when a path leaves its root; LeaseLostError / the abort reason when the
 *   attempt no longer holds its row (nothing removed).
 */
export async function destroyCopy(
  fence: Fence,
  root: string,
  files: readonly ContainedPath[],
  directories: readonly ContainedPath[] = [],
): Promise<{ unlinked: number; kept: ContainedPath[] }> {
  for (const p of [...files, ...directories]) await assertInsideRoot(root, p);
  await fencedCheck(fence);
  let unlinked = 0;
  for (const f of files) {
    try {
      await unlink(f);
      unlinked++;
    } catch (e) {
      if (code(e) !== 'ENOENT') throw e;
    }
  }
  const kept: ContainedPath[] = [];
  for (const d of [...directories].sort((a, b) => b.length - a.length)) {
    try {
      await rmdir(d);
    } catch (e) {
      if (code(e) === 'ENOENT') continue;
      if (code(e) !== 'ENOTEMPTY' && code(e) !== 'EEXIST') throw e;
      kept.push(d);
    }
  }
  return { unlinked, kept };
}

/**
 * Removes this attempt's own partial output (no fence needed: no other attempt writes under this
 * attempt's number). Refuses, as a bug, any path that is not `<final>.ccat-partial-<this attempt>`.
 */
export async function removeOwnPartial(fence: Pick<Fence, 'ref'>, partial: ContainedPath): Promise<void> {
  assertOwnPartial(fence, partial);
  await rm(partial, { recursive: true, force: true });
}

function assertOwnPartial(fence: Pick<Fence, 'ref'>, partial: string): void {
  const m = PARTIAL.exec(partial);
  if (m === null || Number(m[1]) !== fence.ref.attempt) {
    throw new ValidationError(
      `${JSON.stringify(partial.slice(-200))} is not a partial output of attempt ${fence.ref.attempt}`,
    );
  }
}
