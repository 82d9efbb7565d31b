// Which `database.preparedStatements` a benchmark runs with. The apps ship with it off (a
// transaction-mode PgBouncer cannot keep named statements), so that is the default here too;
// BENCH_PREPARED_STATEMENTS=true measures a deployment connected to PostgreSQL directly with it on.

/**
 * The setting from BENCH_PREPARED_STATEMENTS (`true`/`false`, default false: the apps' default).
 * Throws for any other value, so a typo is not measured as the default.
 */
export function preparedStatements(): boolean {
  const raw = process.env['BENCH_PREPARED_STATEMENTS'];
  if (raw === undefined || raw === '' || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new Error(`BENCH_PREPARED_STATEMENTS must be true or false, got ${JSON.stringify(raw)}`);
}

/** The line each benchmark prints so its figures say which setting they were measured with. */
export function describePrepared(on: boolean = preparedStatements()): string {
  return `  (database.preparedStatements ${on}; BENCH_PREPARED_STATEMENTS=${!on} for the other setting)`;
}
