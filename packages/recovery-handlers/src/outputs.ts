// Where each operation type writes. The worker writes exactly here (through partialPath), and
// cleanup removes what interrupted runs left here: one definition for both.
import { isAbsolute, normalize } from 'node:path';
import { classifyError, ValidationError } from '@ccat/errors';
import { NAME_MAX_BYTES, readOutputLocations, type OperationType } from '@ccat/db';
import type { Executor, OperationOutput } from './handler.js';
import { RESERVED_MARKER, TOMB_SUFFIX } from './partial-files.js';

/**
 * A filesystem path that {@link containedPath} built and checked: it names something strictly inside
 * its location root. Operations take this type for every path they act on, so a path joined by hand
 * does not type-check where one is expected.
 */
export type ContainedPath = string & { readonly __contained: unique symbol };

/** The longest suffix the worker adds to a final name: `.ccat-partial-<10 digits>.old`. */
const MAX_SUFFIX_BYTES = `${RESERVED_MARKER}${'9'.repeat(10)}${TOMB_SUFFIX}`.length;
/** The longest last segment {@link containedPath} accepts, so its partial and tomb names fit NAME_MAX ({@link NAME_MAX_BYTES} of @ccat/db). */
export const MAX_FINAL_NAME_BYTES = NAME_MAX_BYTES - MAX_SUFFIX_BYTES;

function refuse(what: string, value: string, why: string): never {
  throw new ValidationError(`${what} ${JSON.stringify(value.slice(0, 200))} ${why}; nothing was touched`, {
    context: { [what]: value.slice(0, 200), reason: why },
  });
}

/**
 * The one function that builds a filesystem path from database values (DESIGN §4 "Files are fenced
 * like rows"): `root` (a location's `root_path`, or a path this function built) joined with
 * `relativePath` (a package name, a stored relative path). Every other path builder here goes through
 * it, and the worker's ESLint config forbids `node:path` join/resolve in the operations.
 *
 * Refused, with a non-retryable ValidationError naming the value (nothing is touched):
 * - a root that is not absolute, is `/`, or holds a NUL byte or a `..` segment;
 * - a relative path that is empty, absolute, holds a NUL byte or a backslash (a Windows separator
 *   would name a different file than its writer meant), or has an empty, `.` or `..` segment (so
 *   `.`, `a/..`, `a//b` and trailing slashes are refused: the result is never the root itself and
 *   never outside it);
 * - a segment holding `.ccat-partial-`: that marker is reserved for partial outputs and tombs, so no
 *   database value names one, and cleanup (which finds partials by name) never matches a real
 *   package's files;
 * - a last segment longer than {@link MAX_FINAL_NAME_BYTES} bytes: its partial or tomb name would
 *   exceed NAME_MAX, so the output could never be written; refused before any work.
 *
 * Symlinks are not resolved here (this is a pure, synchronous function): a symlink inside a root
 * that points out of it is not detected. Renames and `rm -r` act on a link, never on its target.
 *
 * @returns `root/relativePath`, normalised, branded as {@link ContainedPath}.
 * @throws ValidationError as above.
 */
export function containedPath(root: string, relativePath: string): ContainedPath {
  if (typeof root !== 'string' || !isAbsolute(root)) refuse('location root', String(root), 'is not absolute');
  if (root.includes('\0')) refuse('location root', root, 'holds a NUL byte');
  if (root.split('/').includes('..')) refuse('location root', root, 'has a ".." segment');
  const base = normalize(root).replace(/\/+$/, '');
  if (base === '') refuse('location root', root, 'is the filesystem root');
  if (typeof relativePath !== 'string' || relativePath === '')
    refuse('relative path', String(relativePath), 'is empty: it would name the location root itself');
  if (relativePath.includes('\0')) refuse('relative path', relativePath, 'holds a NUL byte');
  if (relativePath.includes('\\')) refuse('relative path', relativePath, 'holds a backslash');
  if (relativePath.startsWith('/'))
    refuse('relative path', relativePath, 'is absolute: it leaves its location');
  const segments = relativePath.split('/');
  for (const segment of segments) {
    if (segment === '..') refuse('relative path', relativePath, 'has a ".." segment: it leaves its location');
    if (segment === '.' || segment === '')
      refuse('relative path', relativePath, 'has an empty or "." segment: it may name the location root');
    if (segment.includes(RESERVED_MARKER))
      refuse(
        'relative path',
        relativePath,
        `holds "${RESERVED_MARKER}", reserved for the names of partial outputs and tombs`,
      );
  }
  const last = Buffer.byteLength(segments.at(-1)!, 'utf8');
  if (last > MAX_FINAL_NAME_BYTES)
    refuse(
      'relative path',
      relativePath,
      `ends in a name of ${last} bytes: at most ${MAX_FINAL_NAME_BYTES}, so that its partial and tomb names (+${MAX_SUFFIX_BYTES} bytes) fit NAME_MAX (${NAME_MAX_BYTES})`,
    );
  return `${base}/${relativePath}` as ContainedPath;
}

/** The directory a transfer package is unpacked into, at the destination location; the name is one path segment. */
export function unpackDirectory(destinationRoot: string, transferPackageName: string): ContainedPath {
  if (typeof transferPackageName === 'string' && transferPackageName.includes('/'))
    refuse('transfer package name', transferPackageName, 'holds a "/": a package name is one path segment');
  return containedPath(containedPath(destinationRoot, 'unpacked'), transferPackageName);
}

/** A location root joined with a stored relative path: {@link containedPath}. */
export function locationPath(root: string, relativePath: string): ContainedPath {
  return containedPath(root, relativePath);
}

/**
 * The final outputs one operation writes (through partial names), so cleanup can find the partials
 * of its interrupted attempts: the stored facts from @ccat/db `readOutputLocations`, each made a path
 * here. None when the row does not exist. None for a deletion: it writes nothing, it only removes,
 * after its checks, through the worker's fenced destroy (which removes its own tomb), so its failure
 * path touches nothing and a refused deletion never removes a file because of its name. Every path
 * comes from {@link containedPath}, so none names a partial itself.
 *
 * @throws the classified error: a ValidationError for a stored value {@link containedPath} refuses or
 *   a missing location, or the database error.
 */
export async function resolveOperationOutputs(
  db: Executor,
  type: OperationType,
  id: string,
): Promise<OperationOutput[]> {
  const locations = await readOutputLocations(db, type, id);
  try {
    return locations.map((l): OperationOutput =>
      l.kind === 'file'
        ? { path: locationPath(l.root, l.relativePath), kind: 'file' }
        : { path: unpackDirectory(l.root, l.packageName), kind: 'directory' },
    );
  } catch (e) {
    throw classifyError(e);
  }
}
