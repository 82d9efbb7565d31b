// The CCAT "managers": what comes after each completed operation, created in the same transaction
// as the completion (so exactly once), and the bundling of packaged raw data into transfer packages.
import type { Database, NextStage, OperationRef, OperationType } from '@ccat/db';
import { sql, type Kysely } from 'kysely';

export interface PipelineOptions {
  /** Raw data packages per transfer package. */
  readonly bundleSize: number;
  /** A partial bundle is sent anyway once its oldest member has waited this long. */
  readonly bundleMaxWaitMs: number;
}

/**
 * Bundles completed, unbundled raw data packages at each buffer into transfer packages: full bundles
 * always, partial ones when `flushOlderThanMs` is given and the oldest member waited that long. Rows
 * are taken with SKIP LOCKED, so concurrent dispatchers never put a package in two bundles.
 */
export async function bundleRawPackages(
  db: Kysely<Database>,
  options: PipelineOptions & { flush: boolean },
): Promise<number> {
  const buffers = await sql<{ buffer_location_id: number; waiting: number; oldest_ms: number }>`
    SELECT buffer_location_id, count(*)::int AS waiting,
      (extract(epoch FROM now() - min(finished_at)) * 1000)::float8 AS oldest_ms
    FROM raw_data_packages WHERE status = 'completed' AND data_transfer_package_id IS NULL
    GROUP BY buffer_location_id`.execute(db);
  let created = 0;
  for (const b of buffers.rows) {
    let waiting = b.waiting;
    // A partial bundle only when flushing and its oldest member waited long enough.
    const allowPartial = options.flush && b.oldest_ms >= options.bundleMaxWaitMs;
    while (waiting >= options.bundleSize || (allowPartial && waiting > 0)) {
      const made = await db.transaction().execute(async (trx) => {
        const picked = await sql<{ id: string }>`
          SELECT id::text AS id FROM raw_data_packages
          WHERE status = 'completed' AND data_transfer_package_id IS NULL AND buffer_location_id = ${b.buffer_location_id}
          ORDER BY id LIMIT ${options.bundleSize} FOR UPDATE SKIP LOCKED`.execute(trx);
        const ids = picked.rows.map((r) => r.id);
        // Fewer than a bundle (another dispatcher holds the rest): leave them, unless flushing.
        if (ids.length === 0 || (ids.length < options.bundleSize && !allowPartial)) return 0;
        const name = `tp-${b.buffer_location_id}-${ids[0]}-${ids.length}`;
        const pkg = await trx
          .insertInto('data_transfer_packages')
          .values({ name, buffer_location_id: b.buffer_location_id, relative_path: `transfer/${name}.tar` })
          .returning('id')
          .executeTakeFirstOrThrow();
        await trx
          .updateTable('raw_data_packages')
          .set({ data_transfer_package_id: pkg.id })
          .where('id', 'in', ids)
          .execute();
        return ids.length;
      });
      if (made === 0) break;
      created++;
      waiting -= made;
    }
  }
  return created;
}

/** The ids of `refs`, for `= ANY($1::bigint[])`. */
const idArray = (refs: readonly OperationRef[]): string[] => refs.map((r) => r.id);

/**
 * What follows completed operations, per type (the others create nothing here: bundling is done by
 * the dispatcher, it needs several completed packages). Each takes all the completed refs of one
 * type at once (the worker's group commit) and runs inside their completion transaction, so the next
 * stage is created exactly once; repeated refs create nothing twice (ON CONFLICT / IS NULL guards).
 */
export const NEXT_STAGE: { readonly [T in OperationType]?: NextStage } = {
  // To every buffer at another site that has a long-term archive.
  data_transfer_package: async (trx, refs) => {
    await sql`
      INSERT INTO data_transfers (data_transfer_package_id, origin_location_id, destination_location_id)
      SELECT p.id, p.buffer_location_id, b.id
      FROM data_transfer_packages p
      JOIN data_locations o ON o.id = p.buffer_location_id
      JOIN data_locations b ON b.location_type = 'buffer' AND b.active AND b.site_id <> o.site_id
      WHERE p.id = ANY(${idArray(refs)}::bigint[])
        AND EXISTS (SELECT 1 FROM data_locations a WHERE a.site_id = b.site_id AND a.location_type = 'long_term_archive' AND a.active)
      ON CONFLICT (data_transfer_package_id, destination_location_id) DO NOTHING`.execute(trx);
  },
  data_transfer: async (trx, refs) => {
    await sql`UPDATE data_transfers SET unpack_status = 'pending', unpack_next_attempt_at = now(), updated_at = now()
      WHERE id = ANY(${idArray(refs)}::bigint[]) AND unpack_status IS NULL`.execute(trx);
  },
  // Every raw data package of the transfer, to every long-term archive at the destination's site.
  unpack: async (trx, refs) => {
    await sql`
      INSERT INTO long_term_archive_transfers (raw_data_package_id, origin_location_id, destination_location_id, relative_path)
      SELECT r.id, t.destination_location_id, a.id, 'archive/' || r.name || '.tar'
      FROM data_transfers t
      JOIN raw_data_packages r ON r.data_transfer_package_id = t.data_transfer_package_id
      JOIN data_locations d ON d.id = t.destination_location_id
      JOIN data_locations a ON a.site_id = d.site_id AND a.location_type = 'long_term_archive' AND a.active
      WHERE t.id = ANY(${idArray(refs)}::bigint[])
      ON CONFLICT (raw_data_package_id, destination_location_id) DO NOTHING`.execute(trx);
  },
  long_term_archive_transfer: async (trx, refs) => {
    const archives = idArray(refs);
    // The package is archived and verified: its source copies may go. The raw files' copy is the
    // directory that holds them (`ingest` names a package after its directory with / and other
    // characters replaced, so the name is not the path); files spread over several directories
    // keep the name, which the deletion then refuses.
    await sql`
      INSERT INTO physical_copies (raw_data_package_id, location_id, relative_path, copy_kind)
      SELECT r.id, r.source_location_id, COALESCE(d.dir, r.name), 'raw_files' FROM long_term_archive_transfers a
        JOIN raw_data_packages r ON r.id = a.raw_data_package_id
        CROSS JOIN LATERAL (
          SELECT CASE WHEN count(*) = count(x.dir) AND count(DISTINCT x.dir) = 1 THEN min(x.dir) END AS dir
          FROM (SELECT CASE WHEN strpos(f.relative_path, '/') > 0
                  THEN regexp_replace(f.relative_path, '/[^/]*$', '') END AS dir
                FROM raw_data_files f WHERE f.raw_data_package_id = r.id) x
        ) d
        WHERE a.id = ANY(${archives}::bigint[])
      UNION ALL
      SELECT r.id, r.buffer_location_id, r.relative_path, 'raw_data_package' FROM long_term_archive_transfers a
        JOIN raw_data_packages r ON r.id = a.raw_data_package_id WHERE a.id = ANY(${archives}::bigint[])
      ON CONFLICT (location_id, relative_path) DO NOTHING`.execute(trx);
    // And the transfer package at the source buffer, once every package in it is archived. The
    // package row locks (taken in id order) serialise the last two archive completions of one
    // bundle in different transactions, so the second sees the first and the copy is created once.
    const locked = await sql<{ id: string }>`SELECT p.id::text AS id FROM data_transfer_packages p
      JOIN raw_data_packages r ON r.data_transfer_package_id = p.id
      JOIN long_term_archive_transfers a ON a.raw_data_package_id = r.id WHERE a.id = ANY(${archives}::bigint[])
      ORDER BY p.id FOR UPDATE OF p`.execute(trx);
    // The packages just locked, once each: the check below reads them by primary key instead of
    // joining the archives and their packages again (two joins fewer to plan and run, issue 13.5).
    const packages = [...new Set(locked.rows.map((r) => r.id))];
    if (packages.length === 0) return;
    await sql`
      INSERT INTO physical_copies (data_transfer_package_id, location_id, relative_path, copy_kind)
      SELECT p.id, p.buffer_location_id, p.relative_path, 'data_transfer_package'
      FROM data_transfer_packages p
      WHERE p.id = ANY(${packages}::bigint[])
        AND NOT EXISTS (
          SELECT 1 FROM raw_data_packages r2
          WHERE r2.data_transfer_package_id = p.id
            AND NOT EXISTS (SELECT 1 FROM long_term_archive_transfers a2
              WHERE a2.raw_data_package_id = r2.id AND a2.status = 'completed' AND a2.verified_at IS NOT NULL))
      ON CONFLICT (location_id, relative_path) DO NOTHING`.execute(trx);
  },
};
