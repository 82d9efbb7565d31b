// What a service process does about its connections: one log line per outage (not one per query or
// per reconnect attempt), readiness that means "able to do the work" (PostgreSQL reachable and
// migrated to what this code needs, Redis connected), and waiting at start for a database that is
// not there yet. Shared by the worker and the monitor-runner.
import { migrationStatus, type Database } from '@ccat/db';
import {
  classifyError,
  ConfigurationError,
  DatabaseConnectionError,
  NetworkError,
  OperationTimeoutError,
  redactSecrets,
  ServiceUnavailableError,
  type CCATDataOperationError,
} from '@ccat/errors';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * The `msg` of the line a service logs (level fatal) when its last-resort `uncaughtException` /
 * `unhandledRejection` handler fires, just before it exits 1. Stable: fault tests grep for it to
 * prove no fault reached that handler.
 */
export const FATAL_UNHANDLED_MESSAGE = 'fatal: unhandled error; exiting';

/**
 * The last resort's report of an error nothing else handled: logs one fatal line (msg
 * {@link FATAL_UNHANDLED_MESSAGE}, the classified code, the stack) when a logger exists yet, and
 * returns the redacted line for stderr (`<service>: fatal: …: <kind>: <message> [<code>]`). The
 * caller (main.ts, which alone touches `process`) prints it and exits 1. Never throws.
 */
export function reportUnhandled(
  service: string,
  kind: 'uncaughtException' | 'unhandledRejection',
  thrown: unknown,
  logger: Logger | undefined,
): string {
  const err = classifyError(thrown);
  const stack = thrown instanceof Error ? thrown.stack : undefined;
  logger?.fatal({ kind, errorCode: err.code, err: err.message, stack }, FATAL_UNHANDLED_MESSAGE);
  return `${service}: ${FATAL_UNHANDLED_MESSAGE}: ${kind}: ${redactSecrets(err.message, 2000)} [${err.code}]`;
}

/**
 * How long a command on a service's ordinary Redis client (heartbeats, health key, the monitors'
 * lease and scans; not BullMQ's connection, whose blocking commands wait on purpose) may wait for
 * its answer, in ms: ioredis' `commandTimeout`. Without it a hung server (paused, or a network
 * that drops packets without a reset) holds a command, and the pass or shutdown awaiting it,
 * forever. The same 5 s as @ccat/heartbeat's own bound on its Redis round trips.
 */
export const REDIS_COMMAND_TIMEOUT_MS = 5_000;

/** What a schema that lacks migrations needs; in the log and in /readyz. */
export const MIGRATE_HINT = 'run: ccat-recovery migrate';

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
export function watchRedis(client: Redis, faults: ConnectionFaultLog, name: string): void {
  client.on('error', (e: unknown) => faults.lost(e, { client: name }));
  client.on('ready', () => faults.restored());
}

/**
 * Closes an ioredis client within `timeoutMs` (default 1 s): QUIT when the server answers in time,
 * otherwise (a hung, paused or unreachable server, a TLS handshake that never ends) the socket is
 * dropped with `disconnect()`. Never throws and never waits longer than `timeoutMs`: a shutdown
 * must not hang on a server that does not answer.
 */
export async function closeRedis(client: Redis, timeoutMs = 1_000): Promise<void> {
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

const timeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });

/** The database as readiness sees it. */
export type DatabaseState =
  | { readonly state: 'ok' }
  | { readonly state: 'not_migrated'; readonly pending: readonly string[] }
  | { readonly state: 'unreachable'; readonly error: CCATDataOperationError }
  | { readonly state: 'refused'; readonly error: CCATDataOperationError };

/**
 * Codes of database errors no waiting cures: wrong credentials or database name. (A host name that
 * does not resolve is waited for: in a container the database's name may resolve only once it runs.)
 */
const REFUSALS = new Set(['DB_AUTH_FAILED', 'DB_CONFIGURATION']);

/**
 * Whether this code can work on the database: reachable within `timeoutMs` and every migration it
 * knows applied (`migrationStatus`). `refused`: the server answered but no retry helps (wrong
 * password or database name). Never throws.
 */
export async function databaseState(
  db: Kysely<Database>,
  schema: string,
  timeoutMs = 3_000,
): Promise<DatabaseState> {
  try {
    const status = await timeout(migrationStatus(db, { schema }), timeoutMs, 'PostgreSQL');
    return status.upToDate ? { state: 'ok' } : { state: 'not_migrated', pending: status.pending };
  } catch (thrown) {
    const error = classifyError(thrown);
    return REFUSALS.has(error.code) ? { state: 'refused', error } : { state: 'unreachable', error };
  }
}

/**
 * A Redis connection as readiness sees it: `ready` when it is connected and answers PING within
 * `timeoutMs` (default 3 s); `no answer` when connected but silent (a hung or paused server, whose
 * socket stays open); otherwise ioredis' status (`connecting`, `reconnecting`, `end`…). Never throws.
 */
export async function redisState(client: Redis, timeoutMs = 3_000): Promise<string> {
  if (client.status !== 'ready') return client.status;
  try {
    await timeout(client.ping(), timeoutMs, 'Redis');
    return 'ready';
  } catch {
    return client.status === 'ready' ? 'no answer' : client.status;
  }
}

/** /readyz of a service: what readiness checks. */
export interface ReadinessSources {
  readonly db: Kysely<Database>;
  readonly schema: string;
  /** Every Redis connection the work needs, by name. */
  readonly redis: Readonly<Record<string, Redis>>;
  /** Whether the service's own work has started (false while it waits at start, or once closing). */
  readonly working: () => boolean;
  readonly timeoutMs?: number;
}

/**
 * Ready means able to do the work: the work started, PostgreSQL reachable and migrated to this
 * code's latest migration, every Redis connection ready and answering PING (`redisState`); the
 * checks run at once, each bounded by `timeoutMs` (default 3 s). The details say what is missing; an
 * unmigrated schema adds `action: "run: ccat-recovery migrate"`.
 */
export async function readiness(
  s: ReadinessSources,
): Promise<{ ok: boolean; details: Record<string, unknown> }> {
  const [db, redisStates] = await Promise.all([
    databaseState(s.db, s.schema, s.timeoutMs),
    Promise.all(
      Object.entries(s.redis).map(
        async ([name, client]) => [name, await redisState(client, s.timeoutMs)] as const,
      ),
    ),
  ]);
  const redis = Object.fromEntries(redisStates);
  const redisOk = Object.values(redis).every((state) => state === 'ready');
  const details: Record<string, unknown> = {
    working: s.working(),
    postgres: db.state === 'ok' ? 'ok' : db.state === 'not_migrated' ? 'not migrated' : db.state,
    redis,
  };
  if (db.state === 'not_migrated') {
    details['pendingMigrations'] = db.pending;
    details['action'] = MIGRATE_HINT;
  }
  if (db.state === 'unreachable' || db.state === 'refused') details['postgresError'] = db.error.code;
  return { ok: s.working() && db.state === 'ok' && redisOk, details };
}

/** Sleeps `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Throws `ConfigurationError` (code `REDIS_DATABASE`, exit 2) when the connection is not on the
 * database its URL names: ioredis reports a refused SELECT (`ERR DB index is out of range`, a
 * number past the server's `databases`) as a connection error and then works on database 0, where
 * the keys of another deployment may be. Read with CLIENT INFO (Redis 6.2+); a server without it
 * is not checked.
 */
async function assertSelectedDatabase(client: Redis): Promise<void> {
  const wanted = client.options.db ?? 0;
  if (wanted === 0) return;
  let info: string;
  try {
    info = String(await timeout(client.client('INFO'), 3_000, 'Redis'));
  } catch {
    return;
  }
  const db = /(?:^|\s)db=(\d+)/.exec(info)?.[1];
  if (db !== undefined && Number(db) !== wanted)
    throw new ConfigurationError(
      `redis.url names database ${wanted}, which this Redis server refused (it has fewer databases): the connection is on database ${db}`,
      { code: 'REDIS_DATABASE', context: { wanted, selected: Number(db) } },
    );
}

/**
 * Waits until every Redis connection is ready and answers PING (`redisState`), polling every
 * `intervalMs` (default 2 s); logs once while it waits. A Redis that is down or restarting at
 * start is waited for like an unreachable database, not a reason to exit. Resolves true when
 * ready, false when `signal` aborts first. Throws `ConfigurationError` (`REDIS_DATABASE`) when a
 * connection is not on the database its URL names (the server refused the SELECT).
 */
export async function waitForRedis(o: {
  readonly redis: Readonly<Record<string, Redis>>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly intervalMs?: number;
}): Promise<boolean> {
  let logged = false;
  while (!o.signal.aborted) {
    const states = Object.fromEntries(
      await Promise.all(
        Object.entries(o.redis).map(async ([name, client]) => [name, await redisState(client)] as const),
      ),
    );
    if (Object.values(states).every((state) => state === 'ready')) {
      for (const client of Object.values(o.redis)) await assertSelectedDatabase(client);
      if (logged) o.logger.info('Redis ready: starting the work');
      return true;
    }
    if (!logged) {
      logged = true;
      o.logger.warn({ redis: states }, 'Redis is not reachable; waiting for it before starting the work');
    }
    await pause(o.intervalMs ?? 2_000, o.signal);
  }
  return false;
}

/**
 * Waits until the database can take the work: reachable and migrated. Logs once per state it waits
 * in (unreachable; not migrated, with `run: ccat-recovery migrate`), polls every `intervalMs`.
 * Resolves true when ready, false when `signal` aborts first. Throws `ConfigurationError` when the
 * server refuses (credentials or database name wrong): waiting would not help; exit 2.
 */
export async function waitForDatabase(o: {
  readonly db: Kysely<Database>;
  readonly schema: string;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly intervalMs?: number;
}): Promise<boolean> {
  let logged: DatabaseState['state'] | undefined;
  while (!o.signal.aborted) {
    const s = await databaseState(o.db, o.schema);
    if (s.state === 'ok') {
      if (logged !== undefined) o.logger.info({ schema: o.schema }, 'database ready: starting the work');
      return true;
    }
    if (s.state === 'refused') {
      throw new ConfigurationError(
        `PostgreSQL refused this configuration: ${s.error.message} [${s.error.code}]`,
        {
          code: 'DATABASE_REFUSED',
          context: { errorCode: s.error.code },
          cause: s.error,
        },
      );
    }
    if (logged !== s.state) {
      logged = s.state;
      if (s.state === 'not_migrated')
        o.logger.error(
          { schema: o.schema, pendingMigrations: s.pending, action: MIGRATE_HINT },
          `database schema "${o.schema}" is not migrated to this version: ${MIGRATE_HINT}; waiting`,
        );
      else
        o.logger.warn(
          { errorCode: s.error.code, err: s.error.message },
          'PostgreSQL is not reachable; waiting for it before starting the work',
        );
    }
    await pause(o.intervalMs ?? 2_000, o.signal);
  }
  return false;
}
