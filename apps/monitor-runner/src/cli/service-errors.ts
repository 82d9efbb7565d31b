// Telling "could not talk to the server" from other failures, and saying so with the service's name,
// where it was looked for and how to start it. No client libraries here: commands that only
// classify errors should not load the drivers.
import {
  classifyError,
  DatabaseConnectionError,
  NetworkError,
  OperationTimeoutError,
  ServiceUnavailableError,
  type CCATDataOperationError,
} from '@ccat/errors';
import { ServiceUnreachableError, type ServiceName } from './exit-codes.js';

export const START_POSTGRES = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';
export const START_REDIS =
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no';

const HINTS: Readonly<Record<ServiceName, string>> = {
  PostgreSQL: `is it running? start it with: ${START_POSTGRES} (or set DATABASE_URL / database.url)`,
  Redis: `is it running? start it with: ${START_REDIS} (or set REDIS_URL / redis.url)`,
};

/** A classified error that means "could not talk to the server", as opposed to "the server said no". */
export function isConnectionFailure(e: CCATDataOperationError): boolean {
  return (
    e instanceof DatabaseConnectionError ||
    e instanceof ServiceUnavailableError ||
    e instanceof NetworkError ||
    e instanceof OperationTimeoutError
  );
}

/** The error to report when `service` failed with `thrown` (classified; its message carries no URL). */
export function unreachable(service: ServiceName, where: string, thrown: unknown): ServiceUnreachableError {
  const e = classifyError(thrown);
  return new ServiceUnreachableError({
    service,
    where,
    reason: `${e.message} [${e.code}]`,
    hint: HINTS[service],
    cause: e,
  });
}

/** A service as a command that can do without it sees it: connected, or why not. */
export type Connection<T> =
  | { readonly ok: true; readonly client: T; readonly where: string }
  | { readonly ok: false; readonly error: ServiceUnreachableError };
