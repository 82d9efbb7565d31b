// One run of ccat-recovery, minus the process: arguments, configuration, connections, the command,
// and the mapping of every outcome to one exit code. cli.ts supplies argv, env and the streams;
// tests can call this directly.
import { readFile } from 'node:fs/promises';
import type { Database } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { MonitorConfig } from '../config.js';
import { parseCommandLine, type CommandLine } from './args.js';
import type { CommandName, FlagValues } from './command-spec.js';
import { openDatabase, openRedis, type OpenDatabase } from './connections.js';
import {
  CliError,
  ConfigProblem,
  EXIT,
  ServiceUnreachableError,
  UsageError,
  type ExitCode,
} from './exit-codes.js';
import { parseFailuresArgs, runFailures, type FailuresOptions } from './failures.js';
import { parseMigrateArgs, runMigrate } from './migrate.js';
import { scrubbingOutput, type CommandIo, type Output } from './output.js';
import { urlSecrets } from './redact.js';
import { parseReportArgs, runReport, type ReportOptions } from './report.js';
import { parseRetryArgs, runRetry, type RetryOptions } from './retry.js';
import { isConnectionFailure, unreachable, type Connection } from './service-errors.js';
import { parseStatusArgs, runStatus, type StatusOptions } from './status.js';
import { commandUsage, GLOBAL_USAGE } from './usage.js';

export interface CliInvocation {
  /** Arguments after the script name. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: Output;
  /** The operating-system user; manual retries record `cli:<operator>`. */
  readonly operator: string;
}

type Parsed =
  | { readonly command: 'status'; readonly options: StatusOptions }
  | { readonly command: 'failures'; readonly options: FailuresOptions }
  | { readonly command: 'retry'; readonly options: RetryOptions }
  | { readonly command: 'report'; readonly options: ReportOptions }
  | { readonly command: 'migrate' };

/** Validates the command's own arguments before any configuration or connection. */
function parseCommand(command: CommandName, values: FlagValues, positionals: readonly string[]): Parsed {
  switch (command) {
    case 'status':
      return { command, options: parseStatusArgs(values, positionals) };
    case 'failures':
      return { command, options: parseFailuresArgs(values, positionals) };
    case 'retry':
      return { command, options: parseRetryArgs(values, positionals) };
    case 'report':
      return { command, options: parseReportArgs(values, positionals) };
    case 'migrate':
      parseMigrateArgs(values, positionals);
      return { command };
    default:
      return command satisfies never;
  }
}

/** Secrets the environment holds, so even a configuration error cannot print them. */
function environmentSecrets(env: CliInvocation['env']): string[] {
  const direct = [env['SMTP_PASSWORD'], env['SLACK_TOKEN']].filter((s): s is string => (s?.length ?? 0) >= 3);
  return [...urlSecrets(env['DATABASE_URL'] ?? ''), ...urlSecrets(env['REDIS_URL'] ?? ''), ...direct];
}

/** defaults → file (--config or CCAT_CONFIG) → environment, through the monitor's own schema. */
async function loadConfig(
  flag: string | undefined,
  env: CliInvocation['env'],
): Promise<Readonly<MonitorConfig>> {
  const fileName = flag ?? (env['CCAT_CONFIG'] || undefined);
  let file: unknown;
  if (fileName !== undefined) {
    let text: string;
    try {
      text = await readFile(fileName, 'utf8');
    } catch (e) {
      throw new ConfigProblem(`cannot read the config file ${fileName}: ${classifyError(e).message}`);
    }
    try {
      file = JSON.parse(text);
    } catch (e) {
      throw new ConfigProblem(`the config file ${fileName} is not valid JSON: ${(e as Error).message}`);
    }
  }
  // Loaded here, not at the top: the config schema pulls in the notifier and recovery packages, the
  // larger part of start-up, which `--help` and a mistyped argument should not wait for.
  const { loadMonitorConfig } = await import('../config.js');
  try {
    return loadMonitorConfig({ file, ...(fileName !== undefined && { fileName }), env });
  } catch (e) {
    throw new ConfigProblem(classifyError(e).message);
  }
}

/** Commands that read or reset rows: short statements, on a migrated schema. */
const QUERIES = { requireMigrated: true, statementTimeoutMs: 60_000 } as const;
/** migrate: may wait for another migrator's lock and run long DDL; the schema may be empty. */
const MIGRATIONS = { requireMigrated: false } as const;

/** Runs `f` on the database and closes it; a connection lost midway is reported as unreachable. */
async function withDatabase<T>(
  config: Readonly<MonitorConfig>,
  options: typeof QUERIES | typeof MIGRATIONS,
  f: (open: OpenDatabase) => Promise<T>,
): Promise<T> {
  const open = await openDatabase(config.database, options);
  try {
    return await f(open);
  } catch (e) {
    if (!(e instanceof CliError) && isConnectionFailure(classifyError(e)))
      throw unreachable('PostgreSQL', open.where, e);
    throw e;
  } finally {
    await open.close();
  }
}

/** `status` shows what it can: an unreachable service becomes a note, not the end of the run. */
async function runStatusCommand(
  config: Readonly<MonitorConfig>,
  io: CommandIo,
  options: StatusOptions,
): Promise<ExitCode> {
  const closers: (() => Promise<void> | void)[] = [];
  try {
    let db: Connection<Kysely<Database>>;
    try {
      const open = await openDatabase(config.database, QUERIES);
      closers.push(() => open.close());
      db = { ok: true, client: open.db, where: open.where };
    } catch (e) {
      if (!(e instanceof ServiceUnreachableError)) throw e;
      db = { ok: false, error: e };
    }
    let redis: Connection<Redis>;
    try {
      const open = await openRedis(config.redis.url);
      closers.push(() => open.close());
      redis = { ok: true, client: open.redis, where: open.where };
    } catch (e) {
      if (!(e instanceof ServiceUnreachableError)) throw e;
      redis = { ok: false, error: e };
    }
    return await runStatus({ ...io, db, redis, keyPrefix: config.keyPrefix }, options);
  } finally {
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  }
}

function execute(
  parsed: Parsed,
  config: Readonly<MonitorConfig>,
  io: CommandIo,
  operator: string,
): Promise<ExitCode> {
  switch (parsed.command) {
    case 'status':
      return runStatusCommand(config, io, parsed.options);
    case 'failures':
      return withDatabase(config, QUERIES, ({ db }) => runFailures({ ...io, db }, parsed.options));
    case 'retry':
      return withDatabase(config, QUERIES, ({ db }) => runRetry({ ...io, db, operator }, parsed.options));
    case 'report':
      return withDatabase(config, QUERIES, ({ db }) => runReport({ ...io, db }, parsed.options));
    case 'migrate':
      return withDatabase(config, MIGRATIONS, ({ db, schema, where }) =>
        runMigrate({ ...io, db, schema, where }),
      );
    default:
      return parsed satisfies never;
  }
}

/** Prints an error the way its kind deserves and returns its exit code. */
function reportError(out: Output, e: unknown, command: string | undefined): ExitCode {
  if (e instanceof UsageError) {
    out.err(`ccat-recovery: ${e.message}`);
    if (e.usage !== undefined) out.err(`\n${e.usage}`);
    return e.exitCode;
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
  let line: CommandLine;
  try {
    line = parseCommandLine(invocation.argv);
  } catch (e) {
    return reportError(out, e, undefined);
  }
  if (line.kind === 'help') {
    out.out(line.command === undefined ? GLOBAL_USAGE : commandUsage(line.command));
    return EXIT.ok;
  }
  try {
    const parsed = parseCommand(line.command, line.values, line.positionals);
    const config = await loadConfig(line.config, invocation.env);
    secrets.push(...urlSecrets(config.database.url), ...urlSecrets(config.redis.url));
    const operator = invocation.operator.replace(/[^\w.@-]/g, '_').slice(0, 64) || 'unknown';
    return await execute(parsed, config, { out, json: line.json }, operator);
  } catch (e) {
    return reportError(out, e, line.command);
  }
}
