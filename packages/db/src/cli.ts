#!/usr/bin/env node
// ccat-db: migrate the CCAT schema and print a status line. The package's one entry point that
// reads the environment (DATABASE_URL, DATABASE_SCHEMA); the library itself never does.
import { parseArgs } from 'node:util';
import { classifyError, redactSecrets } from '@ccat/errors';
import { appliedMigrations, migrateToLatest } from './migrate.js';
import { createDatabase } from './pool.js';
import { countsByTypeAndStatus } from './queries.js';

const USAGE = `usage: ccat-db <migrate|status> [--url postgres://…] [--schema name]
  migrate   bring the schema to the latest migration (safe to run twice, or from two processes)
  status    print applied migrations and operation counts
environment: DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres), DATABASE_SCHEMA (default public)`;

/** The URL without its password (the one redactor of @ccat/errors), for messages. */
function redactUrl(url: string): string {
  try {
    new URL(url);
  } catch {
    return '(unparseable DATABASE_URL)';
  }
  return redactSecrets(url);
}

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { url: { type: 'string' }, schema: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    console.error(`ccat-db: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  const command = parsed.positionals[0];
  if (parsed.values.help === true) {
    console.log(USAGE);
    return 0;
  }
  if (command !== 'migrate' && command !== 'status') {
    console.error(
      `ccat-db: ${command === undefined ? 'no command given' : `unknown command "${command}"`}\n${USAGE}`,
    );
    return 2;
  }
  const url =
    parsed.values.url ?? process.env['DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const schema = parsed.values.schema ?? process.env['DATABASE_SCHEMA'] ?? 'public';
  const database = createDatabase({ connectionString: url, schema, max: 2, applicationName: 'ccat-db' });
  try {
    if (command === 'migrate') {
      const { applied, known } = await migrateToLatest(database.db, { schema });
      console.log(
        applied.length === 0
          ? `migrations: already at the latest (${known.at(-1)}), nothing to do`
          : `migrations: applied ${applied.join(', ')}`,
      );
    }
    const applied = await appliedMigrations(database.db, { schema });
    if (applied.length === 0) {
      console.log(
        `status: schema "${schema}" on ${redactUrl(url)} has no migrations applied; run ccat-db migrate`,
      );
      return command === 'status' ? 1 : 0;
    }
    const counts = await countsByTypeAndStatus(database.db);
    const total = counts.reduce((n, c) => n + c.count, 0);
    const byStatus = new Map<string, number>();
    for (const c of counts) byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + c.count);
    const parts = [...byStatus].map(([s, n]) => `${s} ${n}`).join(', ');
    console.log(
      `status: schema "${schema}" on ${redactUrl(url)} at ${applied.at(-1)}; ${total} operations${parts ? ` (${parts})` : ''}`,
    );
    return 0;
  } catch (e) {
    const err = classifyError(e);
    console.error(
      `ccat-db: ${command} failed against ${redactUrl(url)}: ${redactSecrets(err.message, 2000)} [${err.code}]`,
    );
    if (err.code === 'CONNECTION_REFUSED' || err.code === 'DB_CONNECTION') {
      console.error('is PostgreSQL running? start it with: pg_ctlcluster <version> main start (see README)');
    }
    return 1;
  } finally {
    await database.close();
  }
}

process.exitCode = await main();
