// bench/db-transitions: the cost of fencing, and the due-pending query at scale.
//  (a) fenced claim+complete pairs/s (pool of 10, 20 000 rows) beside plain primary-key UPDATEs doing
//      the same two writes without fencing; ratio (target >= 0.8). Halves alternate to share noise.
//  (b) the due-pending query on 1 000 000 rows of which 1 000 are due (target < 20 ms, index scan),
//      beside the same query with index scans disabled.
import { createTestDatabase } from '@ccat/db/testing';
import { claim, complete, duePending, type Database } from '@ccat/db';
import { sql, type Kysely } from 'kysely';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, percentile, ratio, report, runConcurrently } from './stats.js';

const ROWS = Number(process.env['BENCH_ROWS'] ?? 20_000);
const BIG = Number(process.env['BENCH_BIG_ROWS'] ?? 1_000_000);
const POOL = 10;

async function seedScheduled(
  db: Kysely<Database>,
  n: number,
  source: number,
  buffer: number,
  tag: string,
): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, scheduled_at)
    SELECT ${tag} || '-' || g, ${source}, ${buffer}, ${tag} || '-' || g || '.tar', 'scheduled', now()
    FROM generate_series(1, ${n}) g RETURNING id`.execute(db);
  return rows.map((r) => String(r.id));
}

async function main(): Promise<void> {
  // The one seeder: a migrated schema of its own with the two sites (@ccat/db/testing).
  const t = await createTestDatabase('bench_db', {
    max: POOL,
    preparedStatements: preparedStatements(),
    locations: true,
  });
  const { db } = t;
  try {
    const { source, buffer } = t.locations;

    heading(`(a) claim + complete, pool of ${POOL}, ${ROWS.toLocaleString('en-US')} rows each`);
    console.log(describePrepared());
    const fencedIds = await seedScheduled(db, ROWS, source, buffer, 'fenced');
    const plainIds = await seedScheduled(db, ROWS, source, buffer, 'plain');
    await sql`ANALYZE raw_data_packages`.execute(db);

    const fencedPair = async (id: string) => {
      const ref = { type: 'raw_data_package' as const, id, attempt: 0 };
      const c = await claim(db, ref, { workerId: 'bench' });
      if (!c.applied) throw new Error(`claim of ${id} refused`);
      const d = await complete(db, ref);
      if (!d.applied) throw new Error(`complete of ${id} refused`);
    };
    const plainPair = async (id: string) => {
      await sql`UPDATE raw_data_packages SET status = 'in_progress', claimed_by = ${'bench'}, started_at = now(),
        last_seen_at = now(), finished_at = NULL, progress_bytes = 0, updated_at = now() WHERE id = ${id}`.execute(
        db,
      );
      await sql`UPDATE raw_data_packages SET status = 'completed', finished_at = now(), last_seen_at = now(),
        updated_at = now() WHERE id = ${id}`.execute(db);
    };
    // Warm up both paths (connections, plans) on rows outside the measured sets.
    const warm = await seedScheduled(db, 400, source, buffer, 'warm');
    await runConcurrently(200, POOL, (i) => fencedPair(warm[i]!));
    await runConcurrently(200, POOL, (i) => plainPair(warm[200 + i]!));

    let fencedMs = 0;
    let plainMs = 0;
    const half = Math.floor(ROWS / 2);
    for (const [from, n] of [
      [0, half],
      [half, ROWS - half],
    ] as const) {
      plainMs += await runConcurrently(n, POOL, (i) => plainPair(plainIds[from + i]!));
      fencedMs += await runConcurrently(n, POOL, (i) => fencedPair(fencedIds[from + i]!));
    }
    const fencedRate = report(
      'fenced claim+complete (kysely, conditional UPDATEs)',
      ROWS / (fencedMs / 1000),
      'pairs/s',
    );
    const plainRate = report(
      'baseline: plain primary-key UPDATEs, no fencing',
      ROWS / (plainMs / 1000),
      'pairs/s',
    );
    ratio('fenced / baseline', fencedRate, plainRate, '>= 0.8');

    heading(`(b) due-pending query, ${BIG.toLocaleString('en-US')} rows of which 1 000 are due`);
    const started = performance.now();
    // 60% completed, the rest pending but not due for an hour, then 1 000 due.
    await sql`INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, next_attempt_at)
      SELECT 'big-' || g, ${source}, ${buffer}, 'big-' || g || '.tar',
        CASE WHEN g % 5 < 3 THEN 'completed' ELSE 'pending' END,
        now() + interval '1 hour'
      FROM generate_series(1, ${BIG - 1000}) g`.execute(db);
    await sql`INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, next_attempt_at)
      SELECT 'due-' || g, ${source}, ${buffer}, 'due-' || g || '.tar', 'pending', now() - make_interval(secs => g)
      FROM generate_series(1, 1000) g`.execute(db);
    await sql`VACUUM ANALYZE raw_data_packages`.execute(db);
    report('seeding time', (performance.now() - started) / 1000, 's');

    const timeQuery = async (runs: number, conn: Kysely<Database>): Promise<number[]> => {
      const samples: number[] = [];
      for (let i = 0; i < runs; i++) {
        const s = performance.now();
        const due = await duePending(conn, 'raw_data_package', { limit: 1000 });
        samples.push(performance.now() - s);
        if (due.length !== 1000) throw new Error(`expected 1000 due rows, got ${due.length}`);
      }
      return samples;
    };
    await timeQuery(5, db);
    const indexed = await timeQuery(50, db);
    const plan = await sql<{ 'QUERY PLAN': string }>`EXPLAIN SELECT id, attempt FROM raw_data_packages
      WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1000`.execute(db);
    console.log(`  plan: ${plan.rows.map((r) => r['QUERY PLAN'].trim()).join(' | ')}`);
    const p50 = report('due-pending p50 (partial index on next_attempt_at)', percentile(indexed, 50), 'ms');
    report('due-pending p99', percentile(indexed, 99), 'ms   (target < 20 ms)');

    // Baseline: the same query with index scans off, on one connection, same run. Its text differs
    // (a comment) so it is planned under these settings, not served from a prepared index plan.
    const baseline = await db.connection().execute(async (conn) => {
      await sql`SET enable_indexscan = off`.execute(conn);
      await sql`SET enable_bitmapscan = off`.execute(conn);
      const s: number[] = [];
      for (let i = 0; i < 5; i++) {
        const start = performance.now();
        const { rows } = await sql<{
          id: string;
        }>`/* sequential-scan baseline */ SELECT id, attempt FROM raw_data_packages
          WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at LIMIT 1000`.execute(
          conn,
        );
        s.push(performance.now() - start);
        if (rows.length !== 1000) throw new Error(`baseline found ${rows.length} due rows`);
      }
      await sql`RESET enable_indexscan`.execute(conn);
      await sql`RESET enable_bitmapscan`.execute(conn);
      return s;
    });
    const base50 = report('baseline: same query, sequential scan, p50', percentile(baseline, 50), 'ms');
    ratio('speed-up of the index (baseline p50 / indexed p50)', base50, p50);
  } finally {
    await t.close();
  }
}

await main();
