// What packaging steps share: check that every input still has the size the database recorded, tar
// them into a partial name, and rename into place after a fenced check.
import { stat } from 'node:fs/promises';
import { DataCorruptionError } from '@ccat/errors';
import { locationPath, partialPath, type ContainedPath } from '@ccat/recovery-handlers';
import { publish } from './fenced-files.js';
import { createTar, type HashResult } from './files.js';
import type { OperationContext } from './types.js';

export interface TarInput {
  /** Path under the root, also the entry's name in the archive. */
  readonly relativePath: string;
  readonly expectedBytes: number;
  /** Says what differs when the size does not match, e.g. `raw file a/b.fits is 3 bytes`. */
  readonly mismatch: (gotBytes: number) => string;
  readonly context: Readonly<Record<string, unknown>>;
}

/** Verifies the inputs' sizes, writes the tar of `inputs` (relative to `root`) and moves it to `final`. */
export async function writeTarPackage(
  ctx: OperationContext,
  root: string,
  inputs: readonly TarInput[],
  final: ContainedPath,
): Promise<HashResult> {
  for (const input of inputs) {
    const s = await stat(locationPath(root, input.relativePath));
    if (s.size !== input.expectedBytes) {
      throw new DataCorruptionError(`${input.mismatch(s.size)}, the database says ${input.expectedBytes}`, {
        context: { ...input.context, expected: input.expectedBytes, got: s.size },
      });
    }
  }
  const partial = partialPath(final, ctx.ref.attempt);
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
