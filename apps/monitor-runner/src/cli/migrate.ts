// `migrate`: brings the configured schema to the latest migration (safe to repeat, and to run while
// another process migrates: @ccat/db serialises them with an advisory lock).
import { migrateToLatest, type Database } from '@ccat/db';
import type { Kysely } from 'kysely';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { noPositionals } from './flags.js';
import { writeJson, type CommandIo } from './output.js';

export const migrateSpec: CommandSpec = {
  name: 'migrate',
  summary: 'apply pending database migrations',
  options: {},
  usage: `usage: ccat-recovery migrate [--json]

Brings the configured schema (DATABASE_SCHEMA / database.schema, created if missing) to the latest
migration and prints what it applied. Safe to run twice, or from two processes at once.`,
};

export function parseMigrateArgs(_values: FlagValues, positionals: readonly string[]): Record<string, never> {
  noPositionals(migrateSpec, positionals);
  return {};
}

export interface MigrateDeps extends CommandIo {
  readonly db: Kysely<Database>;
  readonly schema: string;
  /** The database URL, redacted. */
  readonly where: string;
}

export async function runMigrate(deps: MigrateDeps): Promise<ExitCode> {
  const { applied, known } = await migrateToLatest(deps.db, { schema: deps.schema });
  const latest = known.at(-1) ?? null;
  if (deps.json) {
    writeJson(deps.out, { command: 'migrate', schema: deps.schema, applied, latest, known });
  } else if (applied.length === 0) {
    deps.out.out(
      `migrations: schema "${deps.schema}" on ${deps.where} is already at the latest (${latest}); nothing to do`,
    );
  } else {
    deps.out.out(`migrations: applied ${applied.join(', ')} to schema "${deps.schema}" on ${deps.where}`);
  }
  return EXIT.ok;
}
