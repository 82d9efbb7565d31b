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

/** The ids of `refs`, for `unnest($1::bigint[])` and `= ANY($1::bigint[])`. */
const idArray = (refs: readonly OperationRef[]): string[] => refs.map((r) => r.id);

// The next stages run in the completion's transaction, for a batch of a few rows, on tables of
// millions. Each reads only its own rows, by key, whatever the statistics: the completed rows come from
// unnest() of the batch's ids, each further row through a LATERAL lookup the planner cannot flatten
// (`LIMIT 1` on a key, `OFFSET 0` on an index of several rows), each NOT EXISTS through a SubPlan per
// row (`OFFSET 0`), and sequential scans are priced out for the rest of the transaction (`byIndex`):
// with statistics taken before a table grew (autovacuum late or off) the planner hash-joined whole
// tables (a long_term_archive_transfer batch read every raw data package three times), and with
// statistics of one bundle holding every package it scanned the table once per row of the batch
// (issue 13.5; test/next-stage-plans.test.ts).

/**
 * `SET LOCAL enable_seqscan = off`: until the transaction ends (right after the next stage), a
 * sequential scan costs the planner more than any index path, so a lookup by an indexed column is an
 * index scan whatever the statistics say about the value's frequency. Tables without a usable index
 * (the few data_locations) are still scanned. Outside a transaction it changes nothing.
 */
async function byIndex(trx: Kysely<Database>): Promise<void> {
  await sql`SET LOCAL enable_seqscan = off`.execute(trx);
}

/**
 * What follows completed operations, per type (the others create nothing here: bundling is done by
 * the dispatcher, it needs several completed packages). Each takes all the completed refs of one
 * type at once (the worker's group commit) and runs inside their completion transaction, so the next
 * stage is created exactly once; repeated refs create nothing twice (ON CONFLICT / IS NULL guards).
 */
export const NEXT_STAGE: { readonly [T in OperationType]?: NextStage } = {
  // To every buffer at another site that has a long-term archive.
  data_transfer_package: async (trx, refs) => {
    await byIndex(trx);
    await sql`
      INSERT INTO data_transfers (data_transfer_package_id, origin_location_id, destination_location_id)
      SELECT p.id, p.buffer_location_id, b.id
      FROM unnest(${idArray(refs)}::bigint[]) AS k(id)
      CROSS JOIN LATERAL (SELECT p.id, p.buffer_location_id FROM data_transfer_packages p WHERE p.id = k.id LIMIT 1) p
      JOIN data_locations o ON o.id = p.buffer_location_id
      JOIN data_locations b ON b.location_type = 'buffer' AND b.active AND b.site_id <> o.site_id
      WHERE EXISTS (SELECT 1 FROM data_locations a WHERE a.site_id = b.site_id AND a.location_type = 'long_term_archive' AND a.active)
      ON CONFLICT (data_transfer_package_id, destination_location_id) DO NOTHING`.execute(trx);
  },
  data_transfer: async (trx, refs) => {
    await sql`UPDATE data_transfers SET unpack_status = 'pending', unpack_next_attempt_at = now(), updated_at = now()
      WHERE id = ANY(${idArray(refs)}::bigint[]) AND unpack_status IS NULL`.execute(trx);
  },
  // Every raw data package of the transfer, to every long-term archive at the destination's site.
  unpack: async (trx, refs) => {
    await byIndex(trx);
    await sql`
      INSERT INTO long_term_archive_transfers (raw_data_package_id, origin_location_id, destination_location_id, relative_path)
      SELECT r.id, t.destination_location_id, a.id, 'archive/' || r.name || '.tar'
      FROM unnest(${idArray(refs)}::bigint[]) AS k(id)
      CROSS JOIN LATERAL (SELECT t.data_transfer_package_id, t.destination_location_id FROM data_transfers t WHERE t.id = k.id LIMIT 1) t
      CROSS JOIN LATERAL (SELECT r.id, r.name FROM raw_data_packages r WHERE r.data_transfer_package_id = t.data_transfer_package_id OFFSET 0) r
      JOIN data_locations d ON d.id = t.destination_location_id
      JOIN data_locations a ON a.site_id = d.site_id AND a.location_type = 'long_term_archive' AND a.active
      ON CONFLICT (raw_data_package_id, destination_location_id) DO NOTHING`.execute(trx);
  },
  long_term_archive_transfer: async (trx, refs) => {
    const archives = idArray(refs);
    await byIndex(trx);
    // The package is archived and verified: its source copies may go. The raw files' copy is the
    // directory that holds them (`ingest` names a package after its directory with / and other
    // characters replaced, so the name is not the path); files spread over several directories
    // keep the name, which the deletion then refuses. Then the transfer packages of these packages
    // are locked (in id order): the lock serialises the last two archive completions of one bundle in
    // different transactions, so the second sees the first and the bundle's copy is created once.
    const locked = await sql<{ id: string }>`
      WITH archived AS (
        SELECT r.* FROM unnest(${archives}::bigint[]) AS k(id)
        CROSS JOIN LATERAL (SELECT a.raw_data_package_id FROM long_term_archive_transfers a WHERE a.id = k.id LIMIT 1) a
        CROSS JOIN LATERAL (SELECT r.id, r.name, r.source_location_id, r.buffer_location_id, r.relative_path, r.data_transfer_package_id
          FROM raw_data_packages r WHERE r.id = a.raw_data_package_id LIMIT 1) r
      ), copies AS (
        INSERT INTO physical_copies (raw_data_package_id, location_id, relative_path, copy_kind)
        SELECT r.id, c.location_id, c.relative_path, c.copy_kind FROM archived r
        CROSS JOIN LATERAL (
          SELECT CASE WHEN count(*) = count(x.dir) AND count(DISTINCT x.dir) = 1 THEN min(x.dir) END AS dir
          FROM (SELECT CASE WHEN strpos(f.relative_path, '/') > 0
                  THEN regexp_replace(f.relative_path, '/[^/]*$', '') END AS dir
                FROM raw_data_files f WHERE f.raw_data_package_id = r.id) x
        ) d
        CROSS JOIN LATERAL (VALUES (r.source_location_id, COALESCE(d.dir, r.name), 'raw_files'),
          (r.buffer_location_id, r.relative_path, 'raw_data_package')) AS c(location_id, relative_path, copy_kind)
        ON CONFLICT (location_id, relative_path) DO NOTHING
      )
      SELECT p.id::text AS id FROM data_transfer_packages p
      WHERE p.id = ANY(ARRAY(SELECT data_transfer_package_id FROM archived))
      ORDER BY p.id FOR UPDATE OF p`.execute(trx);
    // The packages just locked, once each, read by primary key.
    const packages = [...new Set(locked.rows.map((r) => r.id))];
    if (packages.length === 0) return;
    await sql`
      INSERT INTO physical_copies (data_transfer_package_id, location_id, relative_path, copy_kind)
      SELECT p.id, p.buffer_location_id, p.relative_path, 'data_transfer_package'
      FROM unnest(${packages}::bigint[]) AS k(id)
      CROSS JOIN LATERAL (SELECT p.* FROM data_transfer_packages p WHERE p.id = k.id LIMIT 1) p
      WHERE NOT EXISTS (
          SELECT 1 FROM raw_data_packages r2
          WHERE r2.data_transfer_package_id = p.id
            AND NOT EXISTS (SELECT 1 FROM long_term_archive_transfers a2
              WHERE a2.raw_data_package_id = r2.id AND a2.status = 'completed' AND a2.verified_at IS NOT NULL OFFSET 0)
          OFFSET 0)
      ON CONFLICT (location_id, relative_path) DO NOTHING`.execute(trx);
  },
};
