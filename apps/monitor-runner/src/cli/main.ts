// ccat-recovery on commander: the program, its global options, one registration line per command,
// and the mapping of every outcome to one exit code. cli.ts supplies argv, env and the streams;
// tests call runCli directly. Adding a command: its file in commands/ and one line below.
import { Command, CommanderError, type CommandUnknownOpts } from '@commander-js/extra-typings';
import { classifyError, urlSecrets } from '@ccat/errors';
import { failuresCommand } from './commands/failures.js';
import { ingestCommand } from './commands/ingest.js';
import { migrateCommand } from './commands/migrate.js';
import { reportCommand } from './commands/report.js';
import { retryCommand } from './commands/retry.js';
import { showCommand } from './commands/show.js';
import { sitesCommand } from './commands/sites.js';
import { statusCommand } from './commands/status.js';
import type { CliContext } from './context.js';
import { CliError, EXIT, ServiceUnreachableError, UsageError, type ExitCode } from './errors.js';
import { environmentSecrets, loadConfig, type Env } from './load-config.js';
import { scrubbingOutput, type Output } from './output.js';

export interface CliInvocation {
  /** Arguments after the script name. */
  readonly argv: readonly string[];
  readonly env: Env;
  readonly out: Output;
  /** The operating-system user; manual retries record `cli:<operator>`. */
  readonly operator: string;
}

const GLOBAL_HELP = `
configuration: --config FILE or CCAT_CONFIG, then the environment, which wins: DATABASE_URL,
  DATABASE_SCHEMA, REDIS_URL, REDIS_PASSWORD, REDIS_SENTINEL_PASSWORD, CCAT_KEY_PREFIX,
  CCAT_<SECTION>__<KEY>; NAME_FILE (DATABASE_URL_FILE, REDIS_URL_FILE, REDIS_PASSWORD_FILE,
  SMTP_PASSWORD_FILE, SLACK_TOKEN_FILE…) reads a secret from a file
exit codes: 0 done, 1 unexpected failure, 2 bad arguments or configuration,
            3 PostgreSQL or Redis unreachable, 4 refused (nothing changed)`;

function buildProgram(ctx: CliContext, out: Output): CommandUnknownOpts {
  const program = new Command('ccat-recovery')
    .description('Admin CLI of the CCAT failure-recovery system.')
    .option('--config <file>', 'JSON configuration file (or CCAT_CONFIG); the environment wins over it')
    .option('--json', 'one JSON document on stdout instead of tables')
    .helpCommand(false)
    .addHelpText('after', GLOBAL_HELP)
    .usage('[options] <command> [command options]')
    .argument('[command]')
    .allowExcessArguments()
    .action((name) => {
      if (name === undefined) throw new UsageError('no command given; see ccat-recovery --help');
      const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
      throw new UsageError(
        `unknown command ${JSON.stringify(name.slice(0, 40))}; expected one of ${names.join(', ')}`,
      );
    });
  program.addCommand(statusCommand(ctx));
  program.addCommand(failuresCommand(ctx));
  program.addCommand(retryCommand(ctx));
  program.addCommand(reportCommand(ctx));
  program.addCommand(migrateCommand(ctx));
  program.addCommand(sitesCommand(ctx));
  program.addCommand(ingestCommand(ctx));
  program.addCommand(showCommand(ctx));
  program
    .command('help [command]')
    .description("this help, or a command's")
    .action((name) => {
      const command = name === undefined ? program : program.commands.find((c) => c.name() === name);
      if (command === undefined) throw new UsageError(`no help for unknown command ${JSON.stringify(name)}`);
      command.outputHelp();
    });
  const settings = (c: CommandUnknownOpts) =>
    c
      .exitOverride()
      .configureHelp({ showGlobalOptions: true })
      .configureOutput({
        writeOut: (text) => out.out(text.replace(/\n$/, '')),
        writeErr: (text) => out.err(text.replace(/\n$/, '')),
        outputError: () => undefined, // reported by runCli, on one line
      });
  settings(program);
  for (const c of program.commands) settings(c);
  return program;
}

/** Prints an error the way its kind deserves and returns its exit code. */
function reportError(out: Output, e: unknown, command: string | undefined): ExitCode {
  if (e instanceof CommanderError) {
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help') return EXIT.ok;
    // One line: `status: unknown option '--limt' (Did you mean --limit?)`.
    const message = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    out.err(`ccat-recovery: ${command === undefined ? '' : `${command}: `}${message}`);
    return EXIT.usage;
  }
  if (e instanceof ServiceUnreachableError) {
    out.err(`ccat-recovery: ${e.message}\n  ${e.hint}`);
    return e.exitCode;
  }
  if (e instanceof CliError) {
    out.err(`ccat-recovery: ${e.message}`);
    return e.exitCode;
  }
  const err = classifyError(e);
  out.err(`ccat-recovery: ${command ?? 'the command'} failed unexpectedly: ${err.message} [${err.code}]`);
  return EXIT.failure;
}

/** Runs one command line to its exit code. Never throws. */
export async function runCli(invocation: CliInvocation): Promise<ExitCode> {
  const secrets = environmentSecrets(invocation.env);
  const out = scrubbingOutput(invocation.out, secrets);
  const operator = invocation.operator.replace(/[^\w.@-]/g, '_').slice(0, 64) || 'unknown';
  let code: ExitCode = EXIT.ok;
  const ctx: CliContext = {
    async run(command, f) {
      const globals = command.optsWithGlobals() as { json?: true; config?: string };
      const config = await loadConfig(globals.config, invocation.env, (line) =>
        out.err(`ccat-recovery: ${line}`),
      );
      // Secrets the configuration holds, from the environment or from NAME_FILE files alike.
      const direct = [
        config.notifier.email?.auth?.pass,
        config.notifier.slack?.token,
        config.redis.password,
        config.redis.sentinelPassword,
      ];
      secrets.push(
        ...urlSecrets(config.database.url),
        ...urlSecrets(config.redis.url ?? ''),
        ...direct.filter((v): v is string => (v?.length ?? 0) >= 3),
      );
      code = await f({ out, json: globals.json === true, operator, config });
    },
  };
  const program = buildProgram(ctx, out);
  let command: string | undefined;
  program.hook('preSubcommand', (_, sub) => void (command = sub.name()));
  try {
    await program.parseAsync([...invocation.argv], { from: 'user' });
    return code;
  } catch (e) {
    return reportError(out, e, command);
  }
}
