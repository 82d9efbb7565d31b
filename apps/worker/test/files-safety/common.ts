// Shared helpers for the file-safety tests (reproductions of an adversary's findings, now part of the suite).
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { dispatchDue, readOperation } from '@ccat/db';
import { unpackDirectory } from '@ccat/recovery-handlers';
import type { Harness } from '../harness.js';

/** Every file under `dir`, relative, with its bytes (base64). */
export async function tree(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string, rel: string): Promise<void> => {
    // A directory that is gone shows as an empty tree (the diff then names what was lost).
    const entries = await readdir(d, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (e.isDirectory()) await walk(join(d, e.name), `${rel}${e.name}/`);
      else if (e.isFile()) out.set(`${rel}${e.name}`, (await readFile(join(d, e.name))).toString('base64'));
      else out.set(`${rel}${e.name}`, '(symlink)');
    }
  };
  await walk(dir, '');
  return out;
}

/** Inserts a physical_copies row, dispatches and runs its deletion; answers the outcome and row. */
export async function runCopy(
  h: Harness,
  values: {
    raw_data_package_id?: string;
    data_transfer_package_id?: string;
    location_id: number;
    relative_path: string;
    copy_kind: 'raw_files' | 'raw_data_package' | 'data_transfer_package';
  },
) {
  const db = h.database.db;
  const { id } = await db
    .insertInto('physical_copies')
    .values(values)
    .returning('id')
    .executeTakeFirstOrThrow();
  const [ref] = await dispatchDue(db, 'deletion', { limit: 1 });
  if (ref?.id !== id) throw new Error(`dispatched ${JSON.stringify(ref)}, expected ${id}`);
  const outcome = await h.run(ref);
  return { outcome, row: await readOperation(db, 'deletion', id) };
}

/** The unpack directory of the transfer package behind data_transfer `id`. */
export async function unpackedDir(h: Harness, id: string): Promise<string> {
  const r = await h.database.db
    .selectFrom('data_transfers as t')
    .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
    .innerJoin('data_locations as l', 'l.id', 't.destination_location_id')
    .select(['p.name', 'l.root_path'])
    .where('t.id', '=', id)
    .executeTakeFirstOrThrow();
  return unpackDirectory(r.root_path, r.name);
}
