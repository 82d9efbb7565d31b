// Exit codes of ccat-recovery and the errors that carry them. Scripts branch on the code, so each
// code means one thing and every path out of the CLI ends in exactly one of them.
import { unavailable, type ServiceName, type Unavailable } from '../admin/sources.js';

export const EXIT = {
  /** Done. */
  ok: 0,
  /** Something unexpected failed (a bug, or a service failing mid-command in an unexpected way). */
  failure: 1,
  /** Bad arguments or bad configuration: nothing was attempted. */
  usage: 2,
  /** PostgreSQL or Redis cannot be reached. */
  unreachable: 3,
  /** Refused: the operation was not in a state that allows the request; nothing changed. */
  refused: 4,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error the CLI reports as one message and one exit code, without a stack trace. */
export class CliError extends Error {
  readonly exitCode: ExitCode;

  constructor(message: string, exitCode: ExitCode, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** Bad arguments: nothing was attempted. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

/** Bad configuration (file, environment, or a schema that was never migrated). */
export class ConfigProblem extends CliError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, EXIT.usage, options);
  }
}

/** A service the command needs cannot be reached; `hint` says how to start it. */
export class ServiceUnreachableError extends CliError {
  constructor(
    readonly down: Unavailable,
    readonly hint: string,
    cause?: unknown,
  ) {
    super(`${down.service} is not reachable at ${down.where}: ${down.reason}`, EXIT.unreachable, { cause });
  }
}

const START_POSTGRES = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
const START_REDIS =
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

const HINTS: Readonly<Record<ServiceName, string>> = {
  PostgreSQL: `is it running? start it with: ${START_POSTGRES} (or set DATABASE_URL / database.url)`,
  Redis: `is it running? start it with: ${START_REDIS} (or set REDIS_URL / redis.url)`,
};

/** The error for a service that cannot be reached, with how to start it. */
export function unreachableError(down: Unavailable, cause?: unknown): ServiceUnreachableError {
  return new ServiceUnreachableError(down, HINTS[down.service], cause);
}

/** The error to report when `service` at `where` failed with `thrown`. */
export function unreachable(service: ServiceName, where: string, thrown: unknown): ServiceUnreachableError {
  return unreachableError(unavailable(service, where, thrown), thrown);
}
