// What packaging steps share: check that every input still has the size the database recorded, tar
// them into a partial name, and rename into place after a fenced check.
import { DataCorruptionError } from '@ccat/errors';
import {
  locationPath,
  partialPath,
  regularFileSize,
  type ContainedPath,
  type HashResult,
} from '@ccat/recovery-handlers';
import { assertInsideRoot, publish, type Target } from './fenced-files.js';
import { createTar } from './files.js';
import type { OperationContext } from './types.js';

export interface TarInput {
  /** Path under the root, also the entry's name in the archive. */
  readonly relativePath: string;
  readonly expectedBytes: number;
  /** Says what differs when the size does not match, e.g. `raw file a/b.fits is 3 bytes`. */
  readonly mismatch: (gotBytes: number) => string;
  readonly context: Readonly<Record<string, unknown>>;
}

/**
 * Verifies that every input is a regular file inside `root` (no symlink, FIFO or device: a
 * ValidationError) with the size the database recorded (else DataCorruptionError), writes the tar of
 * `inputs` (relative to `root`) to a partial name and publishes it to `final`.
 */
export async function writeTarPackage(
  ctx: OperationContext,
  root: string,
  inputs: readonly TarInput[],
  final: Target,
): Promise<HashResult> {
  for (const input of inputs) {
    const path = locationPath(root, input.relativePath);
    await assertInsideRoot(root, path);
    const size = await regularFileSize(path);
    if (size !== input.expectedBytes) {
      throw new DataCorruptionError(`${input.mismatch(size)}, the database says ${input.expectedBytes}`, {
        context: { ...input.context, expected: input.expectedBytes, got: size },
      });
    }
  }
  const partial: ContainedPath = partialPath(final.path, ctx.ref.attempt);
  const tarred = await createTar(
    root,
    inputs.map((i) => i.relativePath),
    partial,
    { signal: ctx.signal, onBytes: (n) => ctx.progress(n) },
  );
  await ctx.checkpoint('middle');
  await publish(ctx, partial, final);
  return tarred;
}
