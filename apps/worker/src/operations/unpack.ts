// unpack: extract a transferred package at the destination and verify every file's checksum: each
// raw data package archive against its recorded sha256, then each raw file inside it against
// raw_data_files. Everything happens in a partial directory renamed into place at the end.
import { ChecksumVerificationError, PackageError, ValidationError } from '@ccat/errors';
import {
  containedPath,
  hashFile,
  locationPath,
  partialPath,
  unpackDirectory,
  type ContainedPath,
} from '@ccat/recovery-handlers';
import { readTransfer } from './data-transfer.js';
import { assertInsideRoot, publish, removeOwnPartial } from './fenced-files.js';
import { entryKind, exists, extractTar } from './files.js';
import { locationRoot } from '@ccat/db';
import type { OperationContext, Operation } from './types.js';

/** The raw files of a transfer package, with where they were unpacked and what they must hash to. */
async function expectedFiles(ctx: OperationContext, transferPackageId: string) {
  const packages = await ctx.db
    .selectFrom('raw_data_packages')
    .select(['id', 'name', 'relative_path', 'sha256'])
    .where('data_transfer_package_id', '=', transferPackageId)
    .orderBy('id')
    .execute();
  const files = await ctx.db
    .selectFrom('raw_data_files')
    .select(['raw_data_package_id', 'relative_path', 'sha256'])
    .where(
      'raw_data_package_id',
      'in',
      packages.map((p) => p.id),
    )
    .orderBy('relative_path')
    .execute();
  return { packages, files };
}

/** Verifies every archive and raw file under `dir`; throws ChecksumVerificationError naming the first bad one. */
async function verifyTree(
  ctx: OperationContext,
  dir: ContainedPath,
  exp: Awaited<ReturnType<typeof expectedFiles>>,
  onBytes: (n: number) => void,
): Promise<number> {
  let bytes = 0;
  const check = async (path: ContainedPath, sha256: string | null, what: string) => {
    const h = await hashFile(path, { signal: ctx.signal });
    bytes += h.size;
    onBytes(bytes);
    if (h.sha256 !== sha256) {
      throw new ChecksumVerificationError(`${what} does not match its recorded sha256 after unpacking`, {
        context: { file: what, expected: sha256, got: h.sha256 },
      });
    }
  };
  for (const p of exp.packages) await check(containedPath(dir, p.relative_path), p.sha256, p.relative_path);
  const files = containedPath(dir, 'files');
  for (const f of exp.files) await check(containedPath(files, f.relative_path), f.sha256, f.relative_path);
  return bytes;
}

/** What verification of an existing tree reports when the tree is wrong (not when the attempt is stopped). */
function isDamage(e: unknown): boolean {
  if (e instanceof ChecksumVerificationError || e instanceof ValidationError) return true;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

export const unpack: Operation = {
  async run(ctx) {
    const { db, ref, signal } = ctx;
    const t = await readTransfer(ctx, `data_transfer ${ref.id} (unpack)`);
    if (t.status !== 'completed')
      throw new PackageError(`transfer ${ref.id} has not arrived yet`, { retryable: false });
    const root = await locationRoot(db, t.destination_location_id);
    const archive = locationPath(root, t.relative_path);
    const final = unpackDirectory(root, t.name);
    // Nothing is read or written through a symlink that leaves the root (e.g. a planted `unpacked`).
    await assertInsideRoot(root, archive);
    await assertInsideRoot(root, final);
    const exp = await expectedFiles(ctx, t.package_id);
    // An earlier attempt unpacked and verified everything but did not record it: verify and finish.
    // A tree that fails verification is never removed by itself: this attempt unpacks and verifies
    // its own copy and publishes it over the damaged one (fenced-files.ts: a newer attempt may have
    // published meanwhile, and only a verified copy may replace what is there).
    if (await exists(final)) {
      try {
        // A symlink (or anything but a directory) in its place is damage: never read through it.
        const kind = await entryKind(final);
        if (kind !== 'directory')
          throw new ValidationError(`${final} is ${kind}, not the unpacked directory`);
        return { bytes: await verifyTree(ctx, final, exp, (n) => ctx.progress(n)) };
      } catch (e) {
        // Stopped (lease lost, shutdown): the stop's reason.
        signal.throwIfAborted();
        if (!isDamage(e)) throw e;
        ctx.logger.warn(
          { err: (e as Error).message, directory: final },
          'unpacked directory is damaged: unpacking again, to publish a verified copy over it',
        );
      }
    }
    await ctx.checkpoint('start');
    const arrived = await hashFile(archive, { signal, onBytes: (n) => ctx.progress(n) });
    if (arrived.sha256 !== t.sha256) {
      throw new ChecksumVerificationError(
        `transfer package ${t.name} at the destination does not match its sha256`,
        {
          context: { package: t.name, expected: t.sha256, got: arrived.sha256 },
        },
      );
    }
    const partial = partialPath(final, ref.attempt);
    await removeOwnPartial(ctx, partial);
    await extractTar(archive, partial, { signal, onBytes: (n) => ctx.progress(n) });
    for (const p of exp.packages)
      await extractTar(containedPath(partial, p.relative_path), containedPath(partial, 'files'), { signal });
    await ctx.checkpoint('middle');
    const bytes = await verifyTree(ctx, partial, exp, (n) => ctx.progress(arrived.size + n));
    await publish(ctx, partial, { root, path: final });
    return { bytes: arrived.size + bytes };
  },
};
