// bench/unserved: the cost of the waiting-work-per-queue read (`waitingByQueue`, what `status` and
// the monitor's unserved check run, the monitor once per loop interval) on BENCH_WAITING_ROWS
// waiting rows (default 1 000 000: pending raw data packages at one source, plus completed rows
// beside them), beside the baseline `countsByTypeAndStatus` that `status` has always run over the
// same tables. Median of 5 runs each, alternated to share noise.
import { countsByTypeAndStatus, waitingByQueue } from '@ccat/db';
import { createTestDatabase } from '@ccat/db/testing';
import { sql } from 'kysely';
import { describePrepared, preparedStatements } from './prepared.js';
import { heading, percentile, ratio, report } from './stats.js';

const ROWS = Number(process.env['BENCH_WAITING_ROWS'] ?? 1_000_000);
const RUNS = 5;

async function main(): Promise<void> {
  // The one seeder: a migrated schema of its own with the two sites (@ccat/db/testing).
  const t = await createTestDatabase('bench_unserved', {
    max: 2,
    preparedStatements: preparedStatements(),
    locations: true,
  });
  const { db } = t;
  try {
    const { source, buffer } = t.locations;
    await sql`
      INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status)
      SELECT 'w-' || g, ${source}, ${buffer}, 'w-' || g || '.tar', CASE WHEN g % 2 = 0 THEN 'pending' ELSE 'completed' END
      FROM generate_series(1, ${ROWS * 2}) g`.execute(db);
    await sql`ANALYZE raw_data_packages`.execute(db);

    heading(
      `waiting rows per queue on ${ROWS.toLocaleString('en-US')} pending of ${(ROWS * 2).toLocaleString('en-US')} rows`,
    );
    console.log(describePrepared());
    const ours: number[] = [];
    const base: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      let t0 = performance.now();
      const w = await waitingByQueue(db);
      ours.push(performance.now() - t0);
      if (w[0]?.pending !== ROWS) throw new Error(`expected ${ROWS} pending, got ${w[0]?.pending}`);
      t0 = performance.now();
      await countsByTypeAndStatus(db);
      base.push(performance.now() - t0);
    }
    const o = report('waitingByQueue, median', percentile(ours, 50), 'ms');
    const b = report('countsByTypeAndStatus (baseline), median', percentile(base, 50), 'ms');
    ratio('waitingByQueue / countsByTypeAndStatus', o, b);
  } finally {
    await t.close();
  }
}

await main();
