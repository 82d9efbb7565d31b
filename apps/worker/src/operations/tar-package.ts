// What packaging steps share: check that every input still has the size the database recorded, tar
// them into a partial name, rename into place after a fenced check, record checksum and size.
import { locationRoot } from '@ccat/db';
import { DataCorruptionError } from '@ccat/errors';
import {
  locationPath,
  partialPath,
  regularFileSize,
  type ContainedPath,
  type HashResult,
} from '@ccat/recovery-handlers';
import { assertInsideRoot, publish, type Target } from './fenced-files.js';
import { createTar, fileMatches } from './files.js';
import type { OperationContext, OperationResult } from './types.js';

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
async function writeTarPackage(
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

/** A package row to make the archive of: where it goes at its buffer, and what goes in it. */
export interface PackageJob {
  /** The row's table: its `sha256` and `size_bytes` are set when the operation completes. */
  readonly table: 'raw_data_packages' | 'data_transfer_packages';
  readonly row: {
    readonly relative_path: string;
    readonly sha256: string | null;
    readonly buffer_location_id: number;
  };
  /** Where the inputs are; absent: at the buffer itself. */
  readonly sourceLocationId?: number;
  /** What goes in the archive, relative to the source root. */
  readonly inputs: readonly TarInput[];
}

/**
 * Makes a package's archive at its buffer location (`writeTarPackage`), unless an earlier attempt
 * finished it and only the bookkeeping is left (`bytes: 0`); the result's `record` has the
 * archive's checksum and size, which the completion writes on the row. Throws what `writeTarPackage` throws.
 */
export async function makePackage(ctx: OperationContext, job: PackageJob): Promise<OperationResult> {
  const { db } = ctx;
  const sourceRoot =
    job.sourceLocationId === undefined ? undefined : await locationRoot(db, job.sourceLocationId);
  const bufferRoot = await locationRoot(db, job.row.buffer_location_id);
  const final = locationPath(bufferRoot, job.row.relative_path);
  await assertInsideRoot(bufferRoot, final);
  if (await fileMatches(final, job.row.sha256, ctx.signal)) return { bytes: 0 };
  await ctx.checkpoint('start');
  const tarred = await writeTarPackage(ctx, sourceRoot ?? bufferRoot, job.inputs, {
    root: bufferRoot,
    path: final,
  });
  return {
    bytes: tarred.size,
    record: { checksum: { sha256: tarred.sha256, sizeBytes: tarred.size } },
  };
}
