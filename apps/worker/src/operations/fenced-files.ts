// The only file actions an operation may take that destroy or publish: every operation goes through
// here (the worker's ESLint config forbids fs rename/rm/unlink and node:path join/resolve elsewhere in
// the operations).
//
// FILES ARE FENCED LIKE ROWS (DESIGN §4). A final output is published (renamed into place, replacing
// what is there) or destroyed only right after a fenced check: the attempt's AbortSignal is not
// aborted and a fenced statement (`updateProgress`: `WHERE id AND attempt = k AND status =
// 'in_progress'`) touched its row. An attempt that was aborted (lease lost, shutdown) or whose check
// is refused never removes or replaces a final output: it throws, and its failure path removes only
// its own partials (`<final>.ccat-partial-<n>`, n <= k). What remains is the window between the
// check's answer and the rename system call (one event-loop turn, no I/O between them): a monitor
// that recovers the attempt inside that window lets a newer attempt start, and that attempt can only
// publish a copy it verified, so the two renames leave a verified output either way.
import { mkdir, rename, rm } from 'node:fs/promises';
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

/**
 * Renames the finished partial output `partial` to `final` after a fenced check (see the comment at
 * the top). A file replaces what is there atomically; a directory that finds a final directory in
 * place moves it to this attempt's tomb first (renames only, no removal inside the window), then
 * removes the tomb.
 *
 * @throws LeaseLostError / the abort reason when the attempt no longer holds its row (nothing moved).
 */
export async function publish(fence: Fence, partial: ContainedPath, final: ContainedPath): Promise<void> {
  assertOwnPartial(fence, partial);
  await mkdir(dirname(final), { recursive: true });
  await fencedCheck(fence);
  try {
    await rename(partial, final);
    return;
  } catch (e) {
    if (code(e) !== 'ENOTEMPTY' && code(e) !== 'EEXIST') throw e;
  }
  // A directory cannot replace a non-empty directory: set the old one aside (renames only) and swap.
  const tomb = tombPath(final, fence.ref.attempt);
  await rm(tomb, { recursive: true, force: true });
  await fencedCheck(fence);
  await rename(final, tomb);
  await rename(partial, final);
  await rm(tomb, { recursive: true, force: true });
}

/**
 * Destroys the final output `path` after a fenced check: renames it to this attempt's tomb (so a
 * half-removed tree never looks whole), then removes the tomb. Answers false when nothing was there.
 *
 * @throws LeaseLostError / the abort reason when the attempt no longer holds its row (nothing removed).
 */
export async function destroy(fence: Fence, path: ContainedPath): Promise<boolean> {
  const tomb = tombPath(path, fence.ref.attempt);
  await rm(tomb, { recursive: true, force: true });
  await fencedCheck(fence);
  try {
    await rename(path, tomb);
  } catch (e) {
    if (code(e) === 'ENOENT') return false;
    throw e;
  }
  await rm(tomb, { recursive: true, force: true });
  return true;
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
