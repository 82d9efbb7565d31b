// The global help, built from the commands' own specs.
import type { CommandName, CommandSpec } from './command-spec.js';
import { failuresSpec } from './failures.js';
import { migrateSpec } from './migrate.js';
import { reportSpec } from './report.js';
import { retrySpec } from './retry.js';
import { statusSpec } from './status.js';

export const COMMANDS: Readonly<Record<CommandName, CommandSpec>> = {
  status: statusSpec,
  failures: failuresSpec,
  retry: retrySpec,
  report: reportSpec,
  migrate: migrateSpec,
};

export const GLOBAL_OPTIONS_HELP = `global options:
  --config FILE   JSON configuration file (or CCAT_CONFIG); the environment wins over it:
                  DATABASE_URL, DATABASE_SCHEMA, REDIS_URL, CCAT_KEY_PREFIX, CCAT_<SECTION>__<KEY>
  --json          one JSON document on stdout instead of tables
  -h, --help      this help, or a command's (ccat-recovery <command> --help)`;

export const EXIT_CODES_HELP = `exit codes: 0 done, 1 unexpected failure, 2 bad arguments or configuration,
            3 PostgreSQL or Redis unreachable, 4 refused (nothing changed)`;

export const GLOBAL_USAGE = `usage: ccat-recovery <command> [options]

Admin CLI of the CCAT failure-recovery system.

commands:
${Object.values(COMMANDS)
  .map((c) => `  ${c.name.padEnd(10)}${c.summary}`)
  .join('\n')}

${GLOBAL_OPTIONS_HELP}
${EXIT_CODES_HELP}`;

/** A command's help with the global options under it. */
export function commandUsage(name: CommandName): string {
  return `${COMMANDS[name].usage}\n\n${GLOBAL_OPTIONS_HELP}`;
}
