// Exit codes of ccat-recovery and the errors that carry them. Scripts branch on the code, so each
// code means one thing and every path out of the CLI ends in exactly one of them.
import type { ServiceName } from '@ccat/service';
import { unavailable, type Unavailable } from '../admin/sources.js';

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

const URL_SETTING: Readonly<Record<ServiceName, string>> = {
  PostgreSQL: 'DATABASE_URL / database.url',
  Redis: 'REDIS_URL / redis.url',
};
const START: Readonly<Record<ServiceName, string>> = { PostgreSQL: START_POSTGRES, Redis: START_REDIS };

/**
 * What to do about a service that cannot be used, by how it failed: only when nothing listens
 * (`CONNECTION_REFUSED`, a missing socket) is starting it the advice. A server that answered (an
 * error of PostgreSQL, or of PgBouncer in front of it, such as `query_wait_timeout` when its pool is
 * exhausted) is running: starting it is wrong advice there.
 */
function unreachableHint(down: Unavailable): string {
  const setting = URL_SETTING[down.service];
  switch (down.code) {
    case undefined:
    case 'CONNECTION_REFUSED':
    case 'FILE_NOT_FOUND':
      return `is it running? start it with: ${START[down.service]} (or set ${setting})`;
    case 'HOST_NOT_FOUND':
    case 'DNS_TEMPORARY_FAILURE':
      return `the host name does not resolve: check ${setting}`;
    case 'DB_AUTH_FAILED':
    case 'DB_CONFIGURATION':
      return `the server refused the credentials or the database: check ${setting}`;
    default:
      if (down.service === 'PostgreSQL' && down.code.startsWith('DB_'))
        return "the server answered but gave no connection: a pooler in front of it (PgBouncer: query_wait_timeout, max_client_conn) may have no free server connection, or PostgreSQL is at max_connections or starting/stopping; check the pooler and the clients holding connections (SHOW POOLS; in PgBouncer's admin console), then retry";
      if (down.service === 'Redis' && down.code.startsWith('REDIS_'))
        return 'Redis answered but cannot serve now (loading, busy, a failover): read the reason, then retry';
      return `no answer in time: check the network path to it and its load (${setting} names it), then retry`;
  }
}

/** The error for a service that cannot be reached, with how to start it. */
export function unreachableError(down: Unavailable, cause?: unknown): ServiceUnreachableError {
  return new ServiceUnreachableError(down, unreachableHint(down), cause);
}

/** The error to report when `service` at `where` failed with `thrown`. */
export function unreachable(service: ServiceName, where: string, thrown: unknown): ServiceUnreachableError {
  return unreachableError(unavailable(service, where, thrown), thrown);
}
