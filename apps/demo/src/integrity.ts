// The checks the demo and the chaos soak end with. Each returns problems (empty: it holds).
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import type { Database } from '@ccat/db';
import { sql, type Kysely } from 'kysely';
import * as tar from 'tar';

async function sha256(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), new Writable({ write: (c: Buffer, _e, cb) => (h.update(c), cb()) }));
  return h.digest('hex');
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else out.push(p);
  }
  return out;
}

export interface IntegrityReport {
  readonly archives: number;
  readonly archivedFiles: number;
  readonly keptSourceFiles: number;
  readonly problems: string[];
}

/**
 * Every archived package matches its checksum and holds exactly its raw files, each byte-identical
 * to what was observed (sha256 recorded at ingest); every raw file of a package that is not archived
 * is still at its source (nothing lost); nothing was deleted without a verified archive.
 */
export async function checkIntegrity(db: Kysely<Database>): Promise<IntegrityReport> {
  const problems: string[] = [];
  const archives = await sql<{ package_id: string; name: string; sha256: string | null; path: string }>`
    SELECT r.id::text AS package_id, r.name, r.sha256, l.root_path || '/' || a.relative_path AS path
    FROM long_term_archive_transfers a JOIN raw_data_packages r ON r.id = a.raw_data_package_id
    JOIN data_locations l ON l.id = a.destination_location_id
    WHERE a.status = 'completed'`.execute(db);
  const work = await mkdtemp(join(tmpdir(), 'ccat-integrity-'));
  let archivedFiles = 0;
  try {
    for (const a of archives.rows) {
      if (a.sha256 === null || (await sha256(a.path)) !== a.sha256) {
        problems.push(`archive of ${a.name} does not match its recorded sha256`);
        continue;
      }
      const dir = join(work, a.package_id);
      await mkdir(dir, { recursive: true });
      await tar.extract({ file: a.path, cwd: dir, strict: true, preservePaths: false });
      const expected = await db
        .selectFrom('raw_data_files')
        .select(['relative_path', 'sha256'])
        .where('raw_data_package_id', '=', a.package_id)
        .execute();
      const found = new Set((await files(dir)).map((f) => relative(dir, f)));
      for (const f of expected) {
        if (!found.delete(f.relative_path)) problems.push(`archive of ${a.name} lacks ${f.relative_path}`);
        else if ((await sha256(join(dir, f.relative_path))) !== f.sha256)
          problems.push(`archived ${f.relative_path} differs from its source`);
        else archivedFiles++;
      }
      for (const extra of found) problems.push(`archive of ${a.name} holds an unexpected ${extra}`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  // Nothing lost: raw files of packages without a verified archive are still at the source.
  const unarchived = await sql<{ relative_path: string; sha256: string; root: string }>`
    SELECT f.relative_path, f.sha256, l.root_path AS root FROM raw_data_files f
    JOIN data_locations l ON l.id = f.source_location_id
    WHERE NOT EXISTS (SELECT 1 FROM long_term_archive_transfers a
      WHERE a.raw_data_package_id = f.raw_data_package_id AND a.status = 'completed' AND a.verified_at IS NOT NULL)`.execute(
    db,
  );
  let keptSourceFiles = 0;
  for (const f of unarchived.rows) {
    const path = join(f.root, f.relative_path);
    const present = await stat(path).then(
      () => true,
      () => false,
    );
    if (!present) problems.push(`${f.relative_path} is not archived and is gone from its source`);
    else if (
      createHash('sha256')
        .update(await readFile(path))
        .digest('hex') !== f.sha256
    )
      problems.push(`${f.relative_path} at its source no longer matches its checksum`);
    else keptSourceFiles++;
  }
  const unsafe = await sql<{ id: string }>`
    SELECT c.id::text FROM physical_copies c WHERE c.status = 'completed' AND c.raw_data_package_id IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM long_term_archive_transfers a
        WHERE a.raw_data_package_id = c.raw_data_package_id AND a.status = 'completed' AND a.verified_at IS NOT NULL)`.execute(
    db,
  );
  for (const u of unsafe.rows) problems.push(`deletion ${u.id} completed without a verified archive`);
  return { archives: archives.rows.length, archivedFiles, keptSourceFiles, problems };
}

/** No operation was completed twice (the event log), and every completed one has its completion event. */
export async function checkCompletedOnce(
  db: Kysely<Database>,
): Promise<{ completions: number; problems: string[] }> {
  const twice = await sql<{ operation_type: string; operation_id: string; n: number }>`
    SELECT operation_type, operation_id::text, count(*)::int AS n FROM operation_events WHERE event = 'completed'
    GROUP BY 1, 2 HAVING count(*) > 1`.execute(db);
  const total = await sql<{
    n: number;
  }>`SELECT count(*)::int AS n FROM operation_events WHERE event = 'completed'`.execute(db);
  return {
    completions: total.rows[0]?.n ?? 0,
    problems: twice.rows.map((r) => `${r.operation_type} ${r.operation_id} completed ${r.n} times`),
  };
}

/** Every failed operation has its ERROR notification delivered, alone or in a digest that was sent. */
export async function checkFailuresNotified(
  db: Kysely<Database>,
): Promise<{ failed: number; notified: number; problems: string[] }> {
  const failed = await sql<{ type: string; id: string; delivered: boolean }>`
    WITH failed AS (
      SELECT 'raw_data_package' AS type, id FROM raw_data_packages WHERE status = 'failed'
      UNION ALL SELECT 'data_transfer_package', id FROM data_transfer_packages WHERE status = 'failed'
      UNION ALL SELECT 'data_transfer', id FROM data_transfers WHERE status = 'failed'
      UNION ALL SELECT 'unpack', id FROM data_transfers WHERE unpack_status = 'failed'
      UNION ALL SELECT 'long_term_archive_transfer', id FROM long_term_archive_transfers WHERE status = 'failed'
      UNION ALL SELECT 'deletion', id FROM physical_copies WHERE status = 'failed')
    SELECT f.type, f.id::text, EXISTS (
      SELECT 1 FROM notifications n LEFT JOIN notifications d ON d.id = n.digest_id
      WHERE n.operation_type = f.type AND n.operation_id = f.id AND n.level = 'ERROR'
        AND (n.status = 'sent' OR (n.status = 'digested' AND d.status = 'sent'))) AS delivered
    FROM failed f`.execute(db);
  const problems = failed.rows
    .filter((r) => !r.delivered)
    .map((r) => `failed ${r.type} ${r.id} has no delivered ERROR notification`);
  return { failed: failed.rows.length, notified: failed.rows.length - problems.length, problems };
}
