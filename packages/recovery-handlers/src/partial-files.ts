// The naming convention for work in progress: every write goes to `<final>.ccat-partial-<attempt>`
// and is renamed into place after a fenced check. The attempt in the name lets cleanup remove what
// attempts <= k left without touching a newer attempt's work that may already be running.
import { readdir, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

const MARKER = '.ccat-partial-';

/** The temporary name attempt `attempt` writes `finalPath` under. */
export function partialPath(finalPath: string, attempt: number): string {
  return `${finalPath}${MARKER}${attempt}`;
}

/** Removes `<final>.ccat-partial-<n>` for every n <= upToAttempt; returns what it removed. Missing parents are fine. */
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
    if (!/^\d{1,10}$/.test(suffix) || Number(suffix) > upToAttempt) continue;
    const p = join(dir, name);
    await rm(p, { recursive: true, force: true });
    removed.push(p);
  }
  return removed;
}
