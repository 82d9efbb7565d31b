// Over 300 lines: one guarded client query (prepared statements, client and server-side bounds) and its options.
import { createHash } from 'node:crypto';
import { ConfigurationError, DatabaseConnectionError, DatabaseOperationError } from '@ccat/errors';
import { Kysely, PostgresDialect, type PostgresPool } from 'kysely';
import pg from 'pg';
import { storablePool } from './sanitize.js';
import type { Database } from './schema.js';

/** What we need of a pg pool: kysely's own small interface, plus error events when we own it. */
export type PoolLike = PostgresPool;

export type DatabaseOptions =
  | {
      /** A pool the caller owns: used as is, never ended by `close()`. Its search_path rules. */
      readonly pool: PoolLike;
    }
  | {
      /** `postgres://user@host:port/db`. */
      readonly connectionString: string;
      /**
       * Schema for every table; default `public`. Tests use one schema per file. Any other schema
       * is set as the connection's search_path through the startup parameter `options`, which a
       * transaction-mode pooler (PgBouncer) refuses: connecting then fails with a `DB_CONFIGURATION`
       * error that names `database.schema`. `public` needs no startup parameter (the server's
       * default search_path, `"$user", public`, finds it).
       */
      readonly schema?: string;
      /** Pool size (default 10). */
      readonly max?: number;
      /** Shown in pg_stat_activity. */
      readonly applicationName?: string;
      /**
       * Client-side bound on each statement's round trip, in ms (default none; 0 = none). A
       * statement with no complete answer by then fails with a `DatabaseConnectionError`
       * (`DB_CONNECTION`, transient) and its connection is destroyed and dropped from the pool, never
       * reused (a late answer could otherwise be read as the next statement's). Works through a
       * transaction-mode pooler (no startup parameter). The server is not told: a statement it is
       * still running ends when it next writes to the closed socket; a transaction left open is
       * rolled back when the server sees the close. Migrations should run without this bound.
       * When set, every transaction also gets server-side bounds derived from it ({@link
       * serverBounds}: statement_timeout, lock_timeout, idle_in_transaction_session_timeout, set
       * LOCAL with its BEGIN), so a timed-out client never leaves a backend waiting inside a
       * transaction, and a frozen process never holds row locks longer than the idle bound.
       */
      readonly statementTimeoutMs?: number;
      /**
       * Bound on opening a connection and on waiting for a free pooled one, in ms (default
       * 10 000; 0 = none). pg-pool's `connectionTimeoutMillis`.
       */
      readonly connectTimeoutMs?: number;
      /**
       * TCP keepalive idle time before the first probe, in ms (default 10 000): a connection whose
       * peer vanished without a reset (a failover, a cut link) is found dead by the kernel instead
       * of being kept for ever. Probe interval and count are the system's (Linux:
       * `net.ipv4.tcp_keepalive_intvl`, `tcp_keepalive_probes`).
       */
      readonly keepAliveInitialDelayMs?: number;
      /**
       * Called with every connection-level error of the pool's clients, idle or checked out (a
       * terminated backend, a restarted server, a reset socket). Without a listener such an error
       * would be an unhandled 'error' event and end the process; with or without this callback,
       * the pool listens, so it never does. The query in flight on that client fails with a
       * classifiable error and the pool replaces the client. Called once per failed client.
       */
      readonly onError?: (error: Error) => void;
      /** Called each time the pool has opened a new connection (after a loss: the server is back). */
      readonly onConnect?: () => void;
      /**
       * Prepare each distinct statement once per connection (server-side named statements; default
       * true here, false in the apps' configuration): the hot transitions then skip parsing and
       * planning, which is most of their cost. Leave off behind a transaction-mode connection pooler
       * that cannot keep prepared statements (PgBouncer before 1.21, or without
       * max_prepared_statements). If the server refuses one anyway (42P05 already exists, 26000
       * does not exist) the pool stops preparing for the rest of its life and calls
       * `onPreparedStatementsRefused` once; the statement itself fails (classified retryable).
       */
      readonly preparedStatements?: boolean;
      /** Called once when the pool turned prepared statements off after the server refused one. */
      readonly onPreparedStatementsRefused?: (error: Error) => void;
    };

/** A database handle: the kysely instance and the pool; `close()` ends only what it created. */
export interface CcatDatabase extends AsyncDisposable {
  readonly db: Kysely<Database>;
  /** The schema tables live in (as configured; `public` for a caller's pool). */
  readonly schema: string;
  close(): Promise<void>;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Validates a schema name (lower-case identifier): it is interpolated into DDL and search_path. */
export function assertSchemaName(schema: string): string {
  if (!SCHEMA_NAME.test(schema)) {
    throw new ConfigurationError(
      `invalid schema name ${JSON.stringify(schema.slice(0, 100))}: expected [a-z_][a-z0-9_]*`,
    );
  }
  return schema;
}

/** Distinct statements prepared per connection; the rest (rare, dynamic ones) run unprepared. */
const MAX_PREPARED_PER_CONNECTION = 256;
const prepared = new WeakMap<object, Set<string>>();

/** Statement names by text, so the hot path hashes each text once (bounded: dynamic texts exist). */
const statementNames = new Map<string, string>();
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (name === undefined) {
    name = `ccat_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;
    if (statementNames.size >= 4 * MAX_PREPARED_PER_CONNECTION) statementNames.clear();
    statementNames.set(text, name);
  }
  return name;
}

/** The message of the error a statement fails with when its round trip exceeds the bound. */
const STATEMENT_TIMEOUT_MESSAGE = 'PostgreSQL statement got no answer within';

interface ClientGuard {
  /** Set when the client was destroyed on purpose (a statement timed out): not a connection fault. */
  discarded: boolean;
}
const guards = new WeakMap<object, ClientGuard>();

/**
 * Our own pool's clients: each parameterised statement is prepared the first time a client runs it
 * (a named statement, reused on that connection, up to a bound per connection) when `prepare`, and
 * every statement is bounded by `statementTimeoutMs` (see {@link DatabaseOptions}): on expiry the
 * client's socket is destroyed, the statement rejects with a timeout error and the client leaves the
 * pool when released.
 */
function guardedPool(
  pool: pg.Pool,
  prepareAtStart: boolean,
  statementTimeoutMs: number,
  schema: string,
  onPreparedStatementsRefused: (error: Error) => void,
): PoolLike {
  const bounds = statementTimeoutMs > 0 ? serverBounds(statementTimeoutMs) : undefined;
  // Shared by every client of the pool: off for good once the server refused a prepared statement.
  let prepare = prepareAtStart;
  const refused = (e: unknown): void => {
    if (!prepare) return;
    const code = (e as { code?: unknown } | null)?.code;
    if (code !== '42P05' && code !== '26000') return;
    prepare = false;
    onPreparedStatementsRefused(e as Error);
  };
  return {
    async connect() {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (e) {
        throw startupParameterHint(e, schema);
      }
      if (!prepared.has(client)) {
        const names = new Set<string>();
        prepared.set(client, names);
        const guard = guards.get(client) ?? { discarded: false };
        guards.set(client, guard);
        const original = client.query.bind(client) as (...args: unknown[]) => unknown;
        const send = (args: unknown[]): unknown => {
          if (!prepare) return original(...args);
          const [text, values] = args;
          if (typeof text !== 'string' || !Array.isArray(values) || args.length !== 2)
            return original(...args);
          const name = statementName(text);
          if (names.has(name) || names.size < MAX_PREPARED_PER_CONNECTION) {
            names.add(name);
            const result = original({ name, text, values });
            if (result instanceof Promise) result.catch(refused);
            return result;
          }
          return original(text, values);
        };
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const result = bounds === undefined ? send(args) : sendBounded(original, send, args, bounds);
          if (statementTimeoutMs <= 0 || !(result instanceof Promise)) return result;
          return bounded(result, statementTimeoutMs, () => {
            guard.discarded = true;
            destroySocket(client);
          });
        };
      }
      // pg-pool sets `release` anew at every checkout. A destroyed client must leave the pool even if
      // pg has not yet seen its socket close.
      const guard = guards.get(client);
      const release = client.release.bind(client);
      // (kysely passes `false`: keep it.)
      client.release = (err?: Error | boolean) =>
        release(
          err === undefined || err === false
            ? guard?.discarded
              ? new Error('connection discarded after a statement timeout')
              : err
            : err,
        );
      return client;
    },
    end: () => pool.end(),
  };
}

/**
 * The server-side bounds every transaction of a pool with a client-side `statementTimeoutMs` gets
 * (transaction-local settings, sent with its BEGIN: no extra round trip, no startup parameter, so
 * they work behind a transaction-mode pooler), in ms:
 * - `statementTimeoutMs`: the server cancels a statement a little before the client would give up
 *   (bound − min(1 s, bound / 10)), so the client gets an error on a connection it keeps, instead of
 *   dropping the socket while the backend goes on waiting (and the pool opening one more);
 * - `idleInTransactionMs`: min(10 s, bound / 3): a process frozen (SIGSTOP, a stalled event loop)
 *   inside a transaction has its session ended by the server, so the row locks it holds are released
 *   within this bound and nobody waits on it for long;
 * - `lockTimeoutMs`: min(the statement bound, 2 × the idle bound): a wait for a row lock another of
 *   our transactions holds ends by then, well before the client bound.
 */
export function serverBounds(statementTimeoutMs: number): {
  readonly statementTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly idleInTransactionMs: number;
} {
  const bound = Math.max(1, Math.floor(statementTimeoutMs));
  const statement = Math.max(1, bound - Math.min(1000, Math.floor(bound / 10)));
  const idle = Math.max(1, Math.min(10_000, Math.floor(bound / 3)));
  return {
    statementTimeoutMs: statement,
    lockTimeoutMs: Math.min(statement, 2 * idle),
    idleInTransactionMs: idle,
  };
}

/** kysely's transaction openers (`begin`, `start transaction isolation level …`), one statement. */
const TRANSACTION_START = /^\s*(?:begin|start\s+transaction)\b[^;]*$/i;

/**
 * Sends a statement; a transaction's opening statement goes with the transaction-local bounds of
 * {@link serverBounds} in the same simple query (one round trip), answering as the opener alone.
 */
function sendBounded(
  original: (...args: unknown[]) => unknown,
  send: (args: unknown[]) => unknown,
  args: unknown[],
  bounds: ReturnType<typeof serverBounds>,
): unknown {
  const [text, values] = args;
  if (
    typeof text !== 'string' ||
    !TRANSACTION_START.test(text) ||
    (values !== undefined && (!Array.isArray(values) || values.length > 0)) ||
    args.length > 2
  )
    return send(args);
  const result = original(
    `${text}; SET LOCAL statement_timeout = ${bounds.statementTimeoutMs}; SET LOCAL lock_timeout = ${bounds.lockTimeoutMs}; SET LOCAL idle_in_transaction_session_timeout = ${bounds.idleInTransactionMs}`,
  );
  if (!(result instanceof Promise)) return result;
  return result.then((r: unknown): unknown => (Array.isArray(r) ? (r as unknown[])[0] : r));
}

/**
 * A refused startup parameter (a transaction-mode pooler refuses `options`, which carries the
 * search_path of a schema other than public) as one line naming the setting to change.
 */
function startupParameterHint(e: unknown, schema: string): unknown {
  const message = e instanceof Error ? e.message : '';
  if (!/unsupported startup parameter/i.test(message)) return e;
  return new DatabaseOperationError(
    `${message}: database.schema "${schema}" is set through the startup parameter "options", which this server (a connection pooler such as PgBouncer in transaction mode) refuses; use database.schema "public" behind the pooler, connect to PostgreSQL directly, or let the pooler ignore "options" (PgBouncer: ignore_startup_parameters = options) and connect as a user whose search_path is set (ALTER ROLE <user> SET search_path = ${schema})`,
    { code: 'DB_CONFIGURATION', retryable: false, cause: e },
  );
}

/** `promise`, or a timeout error after `ms` (then `onTimeout` runs once, and a late outcome is ignored). */
function bounded<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      const error = new DatabaseConnectionError(
        `${STATEMENT_TIMEOUT_MESSAGE} ${ms} ms; its connection was discarded`,
        { context: { statementTimeoutMs: ms } },
      );
      reject(error);
      onTimeout();
    }, ms);
    promise.finally(() => clearTimeout(timer)).then(resolve, reject as (e: unknown) => void);
  });
}

/** Closes a client's socket at once (pg has no public destroy; `end()` waits for the silent peer). */
function destroySocket(client: pg.PoolClient): void {
  const stream = (client as unknown as { connection?: { stream?: { destroy?: () => void } } }).connection
    ?.stream;
  if (typeof stream?.destroy === 'function') stream.destroy();
  else void client.end().catch(() => undefined);
}

/**
 * Builds the kysely instance over a URL (own pool) or a caller's pool. An own pool has TCP keepalive
 * on, bounds connecting (`connectTimeoutMs`) and, when `statementTimeoutMs` is set, each statement:
 * no wait on a silent or frozen server is unbounded except a statement run without that bound.
 */
export function createDatabase(options: DatabaseOptions): CcatDatabase {
  let pool: PoolLike;
  let schema = 'public';
  if ('pool' in options) {
    const callerPool = options.pool;
    // kysely ends its pool on destroy(); a caller's pool is theirs to end.
    pool = { connect: () => callerPool.connect(), end: () => Promise.resolve() };
  } else {
    schema = assertSchemaName(options.schema ?? 'public');
    const own = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'ccat-recovery',
      // No startup parameter for public (a transaction-mode pooler refuses `options`).
      ...(schema !== 'public' && { options: `-c search_path=${schema}` }),
      connectionTimeoutMillis: Math.max(0, Math.floor(options.connectTimeoutMs ?? 10_000)),
      keepAlive: true,
      keepAliveInitialDelayMillis: Math.max(1000, Math.floor(options.keepAliveInitialDelayMs ?? 10_000)),
    });
    const onError = options.onError ?? (() => undefined);
    // pg-pool listens for 'error' only on idle clients: it takes its listener off a client it hands
    // out, so a backend terminated (57P01) or a socket reset during a query emits 'error' on the
    // Client with nobody listening, and Node ends the process. This listener stays for the client's
    // whole life; each client reports its loss once (it is not queryable afterwards).
    own.on('connect', (client: pg.PoolClient) => {
      options.onConnect?.();
      let reported = false;
      const guard = { discarded: false };
      guards.set(client, guard);
      client.on('error', (e: Error) => {
        if (reported || guard.discarded) return;
        reported = true;
        onError(e);
      });
    });
    // pg-pool re-emits an idle client's error on the pool (after removing the client); the
    // client's own listener above has reported it already.
    own.on('error', () => undefined);
    pool = guardedPool(
      own,
      options.preparedStatements !== false,
      Math.max(0, Math.floor(options.statementTimeoutMs ?? 0)),
      schema,
      options.onPreparedStatementsRefused ?? (() => undefined),
    );
  }
  // Every statement's parameters made storable (NUL, lone surrogates): see sanitize.ts.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: storablePool(pool) }) });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= db.destroy());
  return { db, schema, close, [Symbol.asyncDispose]: close };
}
