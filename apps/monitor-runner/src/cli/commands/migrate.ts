// `migrate`: brings the configured schema to the latest migration (safe to repeat, and to run while
// another process migrates: @ccat/db serialises them with an advisory lock).
import { Command } from '@commander-js/extra-typings';
import { migrateToLatest } from '@ccat/db';
import { MIGRATIONS, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { writeJson } from '../output.js';

/** `ccat-recovery migrate`. */
export function migrateCommand(cli: CliContext) {
  return new Command('migrate')
    .summary('apply pending database migrations')
    .description(
      `Brings the configured schema (DATABASE_SCHEMA / database.schema, created if missing) to the latest migration and prints what it applied. Safe to run twice, or from two processes at once.`,
    )
    .action((_options, command) =>
      cli.run(command, ({ config, json, out }) =>
        withDatabase(config, MIGRATIONS, async ({ db, schema, where }) => {
          const { applied, known } = await migrateToLatest(db, { schema });
          const latest = known.at(-1) ?? null;
          if (json) writeJson(out, { command: 'migrate', schema, applied, latest, known });
          else if (applied.length === 0)
            out.out(
              `migrations: schema "${schema}" on ${where} is already at the latest (${latest}); nothing to do`,
            );
          else out.out(`migrations: applied ${applied.join(', ')} to schema "${schema}" on ${where}`);
          return EXIT.ok;
        }),
      ),
    );
}
