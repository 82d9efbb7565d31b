// The next stages read only their own rows, whatever the statistics (issue 13.5): the tables grew
// to thousands of rows and were never analysed (autovacuum late or off), and each statement a
// next stage sends is run under EXPLAIN ANALYZE: no scan of a pipeline table may read more than a few
// rows per completed operation. Written as plain joins, a long_term_archive_transfer batch
// hash-joined every raw data package (three full reads per batch).
import { OPERATION_TABLES, type OperationType } from '@ccat/db';
import { createTestDatabase, type SeededTestDatabase } from '@ccat/db/testing';
import { CompiledQuery, sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NEXT_STAGE } from '../src/pipeline.js';

const ROWS = 20_000;
const BIG = [
  'raw_data_packages',
  'data_transfer_packages',
  'data_transfers',
  'long_term_archive_transfers',
  'physical_copies',
  'raw_data_files',
];

/**
 * ROWS raw data packages, each with two files in one directory, its archive transfer (completed and
 * verified) and its bundle's transfer: bundle b-1 holds r-1 … r-SKEW, every later bundle one package
 * (r-g in b-(g − SKEW + 1)). `stats`: `never` analysed (autovacuum has not come round yet, or is off:
 * the planner guesses selectivities and took a hash join over a whole table as cheap); `skewed`:
 * analysed when the first bundle had just formed (its packages bundled, the next two not yet), then
 * grown (the planner took one bundle as holding most packages and scanned the table once per row of
 * the batch).
 */
async function seeded(label: string, stats: 'never' | 'skewed', skew: number): Promise<SeededTestDatabase> {
  const t = await createTestDatabase(label, { max: 2, locations: true });
  const db = t.db;
  const { source: src, buffer: buf, remoteBuffer: cbuf, archive: lta } = t.locations;
  const fill = async (from: number, to: number, unbundled = 0) => {
    await sql`INSERT INTO data_transfer_packages (name, buffer_location_id, relative_path)
      SELECT 'b-' || g, ${buf}, 'transfer/b-' || g || '.tar'
      FROM generate_series(${Math.max(1, from - skew + 1)}::int, ${to - skew + 1}::int) g`.execute(db);
    await sql`INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, data_transfer_package_id)
      SELECT 'r-' || g, ${src}, ${buf}, 'raw/r-' || g || '.tar',
        CASE WHEN g > ${to - unbundled}::int THEN NULL
          ELSE (SELECT id FROM data_transfer_packages WHERE name = 'b-' || greatest(g - ${skew}::int + 1, 1)) END
      FROM generate_series(${from}::int, ${to}::int) g`.execute(db);
    const mine = sql`(SELECT id FROM raw_data_packages WHERE substr(name, 3)::int BETWEEN ${from}::int AND ${to}::int)`;
    await sql`INSERT INTO raw_data_files (source_location_id, raw_data_package_id, relative_path, size_bytes, sha256)
      SELECT ${src}, r.id, 'obs/' || r.name || '/f' || f, 1, repeat('a', 64)
      FROM raw_data_packages r, generate_series(1, 2) f WHERE r.id IN ${mine}`.execute(db);
    await sql`INSERT INTO long_term_archive_transfers (raw_data_package_id, origin_location_id, destination_location_id, relative_path, status, verified_at)
      SELECT id, ${cbuf}, ${lta}, 'archive/' || name || '.tar', 'completed', now() FROM raw_data_packages WHERE id IN ${mine}`.execute(
      db,
    );
  };
  if (stats === 'never') await fill(1, ROWS);
  else {
    await fill(1, skew + 2, 2);
    await sql`ANALYZE`.execute(db);
    await fill(skew + 3, ROWS);
    await sql`UPDATE raw_data_packages r SET data_transfer_package_id =
      (SELECT id FROM data_transfer_packages WHERE name = 'b-' || (substr(r.name, 3)::int - ${skew}::int + 1))
      WHERE data_transfer_package_id IS NULL`.execute(db);
  }
  await sql`INSERT INTO data_transfers (data_transfer_package_id, origin_location_id, destination_location_id, status, unpack_status)
    SELECT id, ${buf}, ${cbuf}, 'completed', 'in_progress' FROM data_transfer_packages`.execute(db);
  return t;
}

const states: Record<string, SeededTestDatabase> = {};
beforeAll(async () => {
  states['never'] = await seeded('worker_plans_never', 'never', 2);
  states['skewed'] = await seeded('worker_plans_skewed', 'skewed', 10);
}, 60_000);
afterAll(async () => {
  for (const t of Object.values(states)) await t.close();
});

interface Scan {
  readonly table: string;
  readonly node: string;
  readonly rows: number;
}

function scans(plan: Record<string, unknown>): Scan[] {
  const children = (plan['Plans'] as Record<string, unknown>[] | undefined) ?? [];
  const own =
    typeof plan['Relation Name'] === 'string' && String(plan['Node Type']).endsWith('Scan')
      ? [
          {
            table: plan['Relation Name'],
            node: String(plan['Node Type']),
            // Every row the scan looked at: those it returned and those its filter or recheck threw away.
            rows:
              (Number(plan['Actual Rows']) +
                Number(plan['Rows Removed by Filter'] ?? 0) +
                Number(plan['Rows Removed by Index Recheck'] ?? 0)) *
              Number(plan['Actual Loops']),
          },
        ]
      : [];
  return [...own, ...children.flatMap(scans)];
}

/**
 * Runs `type`'s next stage for `ids` in a transaction (rolled back) in which every statement is first
 * run under EXPLAIN ANALYZE (its effects stay: the next statement sees them), then for real (each is
 * idempotent: ON CONFLICT DO NOTHING, IS NULL guards, a lock taken again). Returns the scans of each.
 */
async function plannedScans(
  t: SeededTestDatabase,
  type: OperationType,
  ids: readonly string[],
): Promise<Scan[][]> {
  const plans: Scan[][] = [];
  await t.db
    .transaction()
    .execute(async (trx) => {
      const executor = trx.getExecutor();
      const run = executor.executeQuery.bind(executor);
      executor.executeQuery = (async (query: CompiledQuery) => {
        // A setting (byIndex) has no plan.
        if (/^\s*SET\b/i.test(query.sql)) return run(query);
        const explained = await run(
          CompiledQuery.raw(`EXPLAIN (ANALYZE, FORMAT JSON) ${query.sql}`, [...query.parameters]),
        );
        const [{ Plan }] = (explained.rows[0] as { 'QUERY PLAN': [{ Plan: Record<string, unknown> }] })[
          'QUERY PLAN'
        ];
        plans.push(scans(Plan));
        return run(query);
      }) as typeof executor.executeQuery;
      await NEXT_STAGE[type]!(
        trx,
        ids.map((id) => ({ type, id, attempt: 0 })),
      );
      throw new Error('rolled back');
    })
    .catch((e: unknown) => {
      if ((e as Error).message !== 'rolled back') throw e;
    });
  return plans;
}

describe('next stages, whatever the statistics', () => {
  it.each(
    (['never', 'skewed'] as const).flatMap((stats) =>
      (Object.keys(NEXT_STAGE) as OperationType[]).map((type) => [type, stats] as const),
    ),
  )(
    '%s, statistics %s: each statement reads a few rows per completed operation, by key',
    async (type, stats) => {
      const t = states[stats]!;
      const { table } = OPERATION_TABLES[type];
      // Sixteen rows spread over the table.
      const ids = (
        await sql<{
          id: string;
        }>`SELECT id::text AS id FROM ${sql.table(table)} ORDER BY md5(id::text) LIMIT 16`.execute(t.db)
      ).rows.map((r) => r.id);
      expect(ids).toHaveLength(16);
      const plans = await plannedScans(t, type, ids);
      expect(plans.length).toBeGreaterThan(0);
      for (const [i, plan] of plans.entries())
        for (const s of plan.filter((x) => BIG.includes(x.table))) {
          // A package's files, an archive's package, a bundle's packages: a handful per operation.
          expect(s.rows, `${type} statement ${i}: ${s.node} on ${s.table}`).toBeLessThanOrEqual(
            4 * ids.length,
          );
        }
    },
  );

  it('long_term_archive_transfer still creates every copy once; a bundle only once all its packages are archived', async () => {
    const archiveOf = async (trx: Kysely<never>, names: readonly string[]) =>
      (
        await sql<{ id: string }>`SELECT a.id::text AS id FROM long_term_archive_transfers a
          JOIN raw_data_packages r ON r.id = a.raw_data_package_id WHERE r.name = ANY(${names}::text[])`.execute(
          trx,
        )
      ).rows.map((r) => ({ type: 'long_term_archive_transfer' as const, id: r.id, attempt: 0 }));
    await states['never']!.db.transaction()
      .execute(async (trx) => {
        const stage = NEXT_STAGE.long_term_archive_transfer!;
        // Bundle b-1 holds r-1 and r-2; r-2's archive is not verified yet.
        await sql`UPDATE long_term_archive_transfers SET verified_at = NULL
          WHERE raw_data_package_id = (SELECT id FROM raw_data_packages WHERE name = 'r-2')`.execute(trx);
        const refs = await archiveOf(trx as never, ['r-1', `r-${ROWS}`]);
        await stage(trx, refs);
        await stage(trx, refs);
        const copies = await sql<{ copy_kind: string; relative_path: string }>`
          SELECT copy_kind, relative_path FROM physical_copies ORDER BY copy_kind, relative_path`.execute(
          trx,
        );
        expect(copies.rows).toEqual([
          { copy_kind: 'data_transfer_package', relative_path: `transfer/b-${ROWS - 1}.tar` },
          { copy_kind: 'raw_data_package', relative_path: 'raw/r-1.tar' },
          { copy_kind: 'raw_data_package', relative_path: `raw/r-${ROWS}.tar` },
          { copy_kind: 'raw_files', relative_path: 'obs/r-1' },
          { copy_kind: 'raw_files', relative_path: `obs/r-${ROWS}` },
        ]);
        throw new Error('rolled back');
      })
      .catch((e: unknown) => {
        if ((e as Error).message !== 'rolled back') throw e;
      });
  });
});
