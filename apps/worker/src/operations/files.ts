// File primitives every operation uses: copying to a partial name, tar archives that are
// byte-for-byte reproducible (so re-running a packaging step gives the same checksum). Opening,
// hashing and sizing a source are @ccat/recovery-handlers' regular-files (shared with the admin CLI's
// ingest); renaming into place and removing are in fenced-files.ts. Every stream is created in the
// same synchronous step that hands it to `pipeline`, which attaches its 'error' handler: no stream
// exists across an await without one (a missing source must reject, never crash the worker).
import { constants, lstat, mkdir, open, readdir, realpath } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StorageError, ValidationError } from '@ccat/errors';
import {
  hashFile,
  hashingTap,
  regularFileStream,
  type ContainedPath,
  type HashResult,
} from '@ccat/recovery-handlers';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

/**
 * Creates the directory `dir` and its parents. Recursive mkdir reports ENOENT for a read-only
 * mount; this repeats the first missing step alone so the real error (EROFS, EACCES, ENOSPC) is the
 * one thrown and classified.
 */
async function ensureDirectory(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let missing = dir;
    for (let parent = dirname(missing); parent !== missing; parent = dirname(missing)) {
      if (
        await lstat(parent).then(
          () => true,
          () => false,
        )
      )
        break;
      missing = parent;
    }
    await mkdir(missing);
    throw e;
  }
}

/** Whether `path` exists (a symlink counts as itself, never followed). */
export async function exists(path: ContainedPath): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Whether `path` is a file with the given checksum (an earlier run's output that is already right). */
export async function fileMatches(
  path: ContainedPath,
  sha256: string | null,
  signal?: AbortSignal,
): Promise<boolean> {
  if (sha256 === null || !(await exists(path))) return false;
  return (await hashFile(path, signal ? { signal } : {})).sha256 === sha256;
}

/**
 * Streams what `open()` returns into `target` (parents created, overwritten), hashing on the way.
 * `open` is called only after the awaits, in the same step as `pipeline`, so the source's 'error'
 * always has a handler. Rejects with the stream's error (e.g. ENOENT) or the abort reason.
 */
async function writeStream(
  source: () => Promise<Readable> | Readable,
  target: ContainedPath,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  assertPartial(target);
  await ensureDirectory(dirname(target));
  const tap = hashingTap(options.onBytes);
  const out = await open(target, 'w');
  let from: Readable;
  try {
    from = await source();
  } catch (e) {
    await out.close();
    throw e;
  }
  // Both streams are handed to pipeline in this synchronous step (it attaches their error handlers).
  await pipeline(from, tap, out.createWriteStream(), options.signal ? { signal: options.signal } : {});
  return tap.result();
}

/** Copies a regular file to the partial `target` (parents created, overwritten), hashing what was read. */
export function copyFile(
  from: ContainedPath,
  target: ContainedPath,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  return writeStream(() => regularFileStream(from), target, options);
}

/** Refuses, as a bug, a write target that is not a partial name: files.ts writes only partials. */
function assertPartial(target: string): void {
  if (!/\.ccat-partial-\d{1,10}$/.test(target))
    throw new ValidationError(
      `${JSON.stringify(target.slice(-200))} is not a partial output: only partials are written`,
    );
}

/**
 * Writes a tar of `files` (paths relative to `cwd`) to `target`. Reproducible: fixed mtime, no
 * owner or device metadata, entries in the order given, so the same inputs give the same sha256.
 */
export function createTar(
  cwd: string,
  files: readonly string[],
  target: ContainedPath,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  const open = () =>
    tar.create({ cwd, portable: true, mtime: new Date(0), noDirRecurse: true, strict: true }, [
      ...files,
    ]) as unknown as Readable;
  return writeStream(open, target, options);
}

/** Entry types tar writes as regular files, with `size` bytes of content. */
const FILE_ENTRY_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);

/**
 * Throws if a regular file tar extracted is shorter than its entry. tar's file writer
 * (@isaacs/fs-minipass) ignores how many bytes a write(2) took: when the file system fills up in
 * the middle of a file's last write, the kernel takes what fits and returns a short count (no
 * ENOSPC, since something was written), the rest is dropped, the file is closed and the extraction
 * "succeeds" with a truncated file. Writing the missing part again makes the file system give
 * the errno (ENOSPC, EDQUOT, EFBIG, EIO), which is what is thrown; if that write succeeds (space was
 * freed meanwhile), a StorageError about the short write.
 */
async function assertCompleteFiles(entries: readonly tar.ReadEntry[]): Promise<void> {
  // A later entry for the same path (of any type) replaces an earlier one: only the last is on disk.
  const last = new Map<string, tar.ReadEntry>();
  for (const entry of entries) if (entry.absolute !== undefined) last.set(entry.absolute, entry);
  for (const [path, entry] of last) {
    if (!FILE_ENTRY_TYPES.has(entry.type)) continue;
    const stat = await lstat(path);
    // Anything but a regular file there is not this entry's (tar warned about it): never written.
    if (!stat.isFile() || stat.size >= entry.size) continue;
    const size = stat.size;
    const missing = entry.size - size;
    const handle = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      await handle.write(Buffer.alloc(Math.min(missing, 1 << 20)), 0, undefined, size);
    } finally {
      await handle.close();
    }
    throw new StorageError(
      `${JSON.stringify(entry.path.slice(-200))} was extracted with ${size} of its ${entry.size} bytes (a short write)`,
      { context: { path, expectedBytes: entry.size, writtenBytes: size } },
    );
  }
}

/**
 * Extracts a tar into `dir` (created; a partial directory or a directory inside one). Refuses
 * absolute paths and `..` entries: any entry tar warns about fails it, thrown only once every entry
 * file is closed (tar's `strict` rejected while others were still being created, racing cleanup).
 * Every extracted file is checked to be as long as its entry (assertCompleteFiles: tar drops what a
 * short write did not take, so a full disk could otherwise leave a truncated file and no error).
 */
export async function extractTar(
  file: ContainedPath,
  dir: ContainedPath,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<void> {
  if (!/\.ccat-partial-\d{1,10}(?:\/|$)/.test(dir))
    throw new ValidationError(`${JSON.stringify(dir.slice(-200))} is not inside a partial output`);
  await ensureDirectory(dir);
  const tap = hashingTap(options.onBytes);
  let failed: Error | undefined;
  const entries: tar.ReadEntry[] = [];
  const unpack = tar.extract({
    cwd: dir,
    onwarn: (code, message, data) =>
      (failed ??= data instanceof Error ? data : Object.assign(new Error(`${code}: ${message}`), data)),
    onReadEntry: (entry) => entries.push(entry),
  });
  const source = await regularFileStream(file);
  await pipeline(
    source,
    tap,
    unpack as unknown as NodeJS.WritableStream,
    options.signal ? { signal: options.signal } : {},
  );
  if (failed) throw failed;
  await assertCompleteFiles(entries);
}

/** Names of the entries of a tar (a regular file), in order. */
export async function listTar(file: ContainedPath): Promise<string[]> {
  const names: string[] = [];
  const source = await regularFileStream(file);
  await pipeline(
    source,
    tar.list({ strict: true, onReadEntry: (e) => names.push(e.path) }) as unknown as NodeJS.WritableStream,
  );
  return names;
}

/** What kind of entry a path is, never following a symlink. */
export type EntryKind =
  'file' | 'directory' | 'a symbolic link' | 'a FIFO' | 'a socket' | 'a device or other special file';

function kindOf(s: {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
}): EntryKind {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'directory';
  if (s.isSymbolicLink()) return 'a symbolic link';
  if (s.isFIFO()) return 'a FIFO';
  if (s.isSocket()) return 'a socket';
  return 'a device or other special file';
}

/** What kind of entry `path` is (lstat: a symlink is itself, never followed). */
export async function entryKind(path: ContainedPath): Promise<EntryKind> {
  return kindOf(await lstat(path));
}

/**
 * What is at `path` (lstat, nothing followed) and, for a directory, every entry below it (paths
 * relative to `path`, parents before children), without following symlinks.
 */
export async function listTree(
  path: ContainedPath,
): Promise<{ kind: EntryKind; entries: { relative: string; kind: EntryKind }[] }> {
  const kind = kindOf(await lstat(path));
  const entries: { relative: string; kind: EntryKind }[] = [];
  if (kind === 'directory') {
    for (const e of await readdir(path, { recursive: true, withFileTypes: true })) {
      const relative = `${e.parentPath}/${e.name}`.slice(path.length + 1);
      entries.push({ relative, kind: kindOf(e) });
    }
    entries.sort((a, b) => a.relative.localeCompare(b.relative));
  }
  return { kind, entries };
}

/** A file's identity: device and inode (lstat, not followed) and its real path. */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly realPath: string;
}

/** The {@link FileIdentity} of `path`. */
export async function fileIdentity(path: ContainedPath): Promise<FileIdentity> {
  const s = await lstat(path);
  return { dev: s.dev, ino: s.ino, realPath: await realpath(path) };
}
