// File primitives every operation uses: hashing while streaming, copying to a partial name, tar
// archives that are byte-for-byte reproducible (so re-running a packaging step gives the same
// checksum). Renaming into place and removing are in fenced-files.ts. Every stream is created in the
// same synchronous step that hands it to `pipeline`, which attaches its 'error' handler: no stream
// exists across an await without one (a missing source must reject, never crash the worker).
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar';

export interface HashResult {
  readonly sha256: string;
  readonly size: number;
}

/** A pass-through that hashes and counts, reporting progress at most every `everyBytes`. */
export function hashingTap(
  onBytes?: (total: number) => void,
  everyBytes = 1 << 20,
): Transform & { result(): HashResult } {
  const hash = createHash('sha256');
  let size = 0;
  let reported = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      size += chunk.length;
      if (onBytes && size - reported >= everyBytes) {
        reported = size;
        onBytes(size);
      }
      cb(null, chunk);
    },
    flush(cb) {
      onBytes?.(size);
      cb();
    },
  });
  let digest: string | undefined;
  return Object.assign(tap, {
    result: (): HashResult => ({ sha256: (digest ??= hash.digest('hex')), size }),
  });
}

/** sha256 and size of a file, streaming. */
export async function hashFile(
  path: string,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  const tap = hashingTap(options.onBytes);
  // The tap hashes; the sink only drains.
  const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
  await pipeline(createReadStream(path), tap, sink, options.signal ? { signal: options.signal } : {});
  return tap.result();
}

/** Whether `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Whether `path` is a file with the given checksum (an earlier run's output that is already right). */
export async function fileMatches(
  path: string,
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
export async function writeStream(
  open: () => Readable,
  target: string,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  await mkdir(dirname(target), { recursive: true });
  const tap = hashingTap(options.onBytes);
  await pipeline(open(), tap, createWriteStream(target), options.signal ? { signal: options.signal } : {});
  return tap.result();
}

/** Copies a file to `target`, hashing what was read. */
export function copyFile(
  from: string,
  target: string,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  return writeStream(() => createReadStream(from), target, options);
}

/**
 * Writes a tar of `files` (paths relative to `cwd`) to `target`. Reproducible: fixed mtime, no
 * owner or device metadata, entries in the order given, so the same inputs give the same sha256.
 */
export function createTar(
  cwd: string,
  files: readonly string[],
  target: string,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<HashResult> {
  const open = () =>
    tar.create({ cwd, portable: true, mtime: new Date(0), noDirRecurse: true, strict: true }, [
      ...files,
    ]) as unknown as Readable;
  return writeStream(open, target, options);
}

/** Extracts a tar into `dir` (created). Refuses absolute paths and `..` entries (tar's default), strictly. */
export async function extractTar(
  file: string,
  dir: string,
  options: { signal?: AbortSignal; onBytes?: (n: number) => void } = {},
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const tap = hashingTap(options.onBytes);
  await pipeline(
    createReadStream(file),
    tap,
    tar.extract({ cwd: dir, strict: true }) as unknown as NodeJS.WritableStream,
    options.signal ? { signal: options.signal } : {},
  );
}

/** Names of the entries of a tar, in order. */
export async function listTar(file: string): Promise<string[]> {
  const names: string[] = [];
  await tar.list({ file, strict: true, onReadEntry: (e) => names.push(e.path) });
  return names;
}
