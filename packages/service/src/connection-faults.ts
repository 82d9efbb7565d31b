// What a service process does about a lost connection: one log line per outage (not one per query
// or per reconnect attempt), and closing a client without waiting on a server that does not answer.
import {
  classifyError,
  DatabaseConnectionError,
  NetworkError,
  OperationTimeoutError,
  ServiceUnavailableError,
  type CCATDataOperationError,
} from '@ccat/errors';
import type { RedisConnection } from './redis-connection.js';
import type { Logger } from 'pino';

/**
 * How long a command on a service's ordinary Redis client (heartbeats, health key, the monitors'
 * lease and scans; not BullMQ's connection, whose blocking commands wait on purpose) may wait for
 * its answer, in ms: ioredis' `commandTimeout`. Without it a hung server (paused, or a network
 * that drops packets without a reset) holds a command, and the pass or shutdown awaiting it,
 * forever. The same 5 s as @ccat/heartbeat's own bound on its Redis round trips.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;

/** The services a process connects to. */
export type ServiceName = 'PostgreSQL' | 'Redis';

/**
 * Logs the loss of a connection once per outage: an error logs a warning (classified) unless one
 * was logged in the last `intervalMs` (default 30 s), in which case it is only counted (the next
 * warning says how many were not logged), and the first `restored()` after a logged loss logs that
 * the connection is back. At most two lines per `intervalMs` per service, however many clients
 * fail or reconnect attempts run.
 */
export class ConnectionFaultLog {
  readonly #logger: Logger;
  readonly #service: ServiceName;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #lastLogged = -Infinity;
  #suppressed = 0;
  /** A loss was logged and its restoration not yet. */
  #announced = false;

  constructor(
    logger: Logger,
    service: ServiceName,
    options: { intervalMs?: number; now?: () => number } = {},
  ) {
    this.#logger = logger;
    this.#service = service;
    this.#intervalMs = options.intervalMs ?? 30_000;
    this.#now = options.now ?? Date.now;
  }

  /** A connection failed (any client of this service). */
  lost(error: unknown, context: Record<string, unknown> = {}): void {
    const now = this.#now();
    if (now - this.#lastLogged < this.#intervalMs) {
      this.#suppressed++;
      return;
    }
    const e = classifyError(error);
    this.#logger.warn(
      {
        service: this.#service,
        errorCode: e.code,
        err: e.message,
        ...(this.#suppressed > 0 && { suppressedSinceLastLine: this.#suppressed }),
        ...context,
      },
      `${this.#service} connection lost; reconnecting`,
    );
    this.#announced = true;
    this.#lastLogged = now;
    this.#suppressed = 0;
  }

  /** A connection (re)opened: logged once after a logged loss. */
  restored(): void {
    if (!this.#announced) return;
    this.#announced = false;
    this.#logger.info({ service: this.#service }, `${this.#service} connection restored`);
  }
}

/** Whether a classified error means "could not talk to the server" (not "the server said no"). */
export function isConnectionError(e: CCATDataOperationError): boolean {
  return (
    e instanceof DatabaseConnectionError ||
    e instanceof ServiceUnavailableError ||
    e instanceof NetworkError ||
    e instanceof OperationTimeoutError
  );
}

/**
 * An 'error' listener for a BullMQ object (Worker, Queue): connection errors go to `faults` (once
 * per outage; BullMQ reconnects), any other error is logged as it comes.
 */
export function bullErrorListener(
  faults: ConnectionFaultLog,
  logger: Logger,
  context: Record<string, unknown>,
): (error: unknown) => void {
  return (error) => {
    const e = classifyError(error);
    if (isConnectionError(e)) faults.lost(e, context);
    else logger.warn({ ...context, errorCode: e.code, err: e.message }, 'queue error');
  };
}

/** Attaches 'error', 'ready' listeners to an ioredis client: losses logged once per outage. */
export function watchRedis(client: RedisConnection, faults: ConnectionFaultLog, name: string): void {
  client.on('error', (e: unknown) => faults.lost(e, { client: name }));
  client.on('ready', () => faults.restored());
}

/**
 * Closes an ioredis client within `timeoutMs` (default 1 s): QUIT when the server answers in time,
 * otherwise (a hung, paused or unreachable server, a TLS handshake that never ends) the socket is
 * dropped with `disconnect()`. Never throws and never waits longer than `timeoutMs`: a shutdown
 * must not hang on a server that does not answer.
 */
export async function closeRedis(client: RedisConnection, timeoutMs = 1_000): Promise<void> {
  if (client.status === 'end') return;
  if (client.status !== 'ready') {
    // Not connected (connecting, reconnecting, waiting for TLS): QUIT would only queue.
    client.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const quit = client.quit().then(
    () => true,
    () => false,
  );
  const late = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  const done = await Promise.race([quit, late]);
  clearTimeout(timer);
  if (!done) client.disconnect();
}
