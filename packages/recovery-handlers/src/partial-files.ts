// The naming convention for work in progress: every write goes to `<final>.ccat-partial-<attempt>`
// and is renamed into place after a fenced check. The attempt in the name lets cleanup remove what
// attempts <= k left without touching a newer attempt's work that may already be running.
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

/** The marker of partial-output and tomb names; {@link containedPath} refuses it in database values. */
export const RESERVED_MARKER = '.ccat-partial-';
/** What a tomb adds to a partial name. */
export const TOMB_SUFFIX = '.old';
const MARKER = RESERVED_MARKER;
const TOMB = TOMB_SUFFIX;

/**
 * The temporary name attempt `attempt` writes `finalPath` under: a sibling of `finalPath` (the suffix
 * holds no separator), so a contained path stays contained and keeps its type.
 */
export function partialPath<P extends string>(finalPath: P, attempt: number): P {
  return `${finalPath}${MARKER}${attempt}` as P;
}

/**
 * Where attempt `attempt` moves a final output it is about to destroy or replace (after its fenced
 * check), before removing it: `<final>.ccat-partial-<attempt>.old`. A crash between the rename and the
 * removal leaves a name that cleanup of attempts >= `attempt` removes like any partial.
 */
export function tombPath<P extends string>(finalPath: P, attempt: number): P {
  return `${partialPath(finalPath, attempt)}${TOMB}` as P;
}

/** Removes `<final>.ccat-partial-<n>` (and its tomb `….old`) for every n <= upToAttempt; returns what it removed. Missing parents are fine. */
export async function removePartials(finalPath: string, upToAttempt: number): Promise<string[]> {
  const dir = dirname(finalPath);
  const prefix = `${basename(finalPath)}${MARKER}`;
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const removed: string[] = [];
  for (const name of entries) {
    if (!name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    const m = /^(\d{1,10})(?:\.old)?$/.exec(suffix);
    if (m === null || Number(m[1]) > upToAttempt) continue;
    const p = join(dir, name);
    await rm(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}
