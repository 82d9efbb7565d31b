import { createHash } from 'node:crypto';
import { ConfigurationError } from '@ccat/errors';
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
      /** Schema for every table (search_path); default `public`. Tests use one schema per file. */
      readonly schema?: string;
      /** Pool size (default 10). */
      readonly max?: number;
      /** Shown in pg_stat_activity. */
      readonly applicationName?: string;
      /** Per-statement timeout in ms (default none). */
      readonly statementTimeoutMs?: number;
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
       * true): the hot transitions then skip parsing and planning, which is most of their cost.
       * Turn off behind a transaction-mode connection pooler that cannot keep prepared statements.
       */
      readonly preparedStatements?: boolean;
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

/**
 * A pool whose clients prepare each parameterised statement the first time they run it (a named
 * statement, reused on that connection), up to a bound per connection.
 */
function preparingPool(pool: pg.Pool): PoolLike {
  return {
    async connect() {
      const client = await pool.connect();
      if (!prepared.has(client)) {
        const names = new Set<string>();
        prepared.set(client, names);
        const original = client.query.bind(client) as (...args: unknown[]) => unknown;
        (client as { query: unknown }).query = (...args: unknown[]) => {
          const [text, values] = args;
          if (typeof text !== 'string' || !Array.isArray(values) || args.length !== 2)
            return original(...args);
          const name = statementName(text);
          if (names.has(name) || names.size < MAX_PREPARED_PER_CONNECTION) {
            names.add(name);
            return original({ name, text, values });
          }
          return original(text, values);
        };
      }
      return client;
    },
    end: () => pool.end(),
  };
}

/** Builds the kysely instance over a URL (own pool) or a caller's pool. */
export function createDatabase(options: DatabaseOptions): CcatDatabase {
  let pool: PoolLike;
  let schema = 'public';
  if ('pool' in options) {
    const callerPool = options.pool;
    // kysely ends its pool on destroy(); a caller's pool is theirs to end.
    pool = { connect: () => callerPool.connect(), end: () => Promise.resolve() };
  } else {
    schema = assertSchemaName(options.schema ?? 'public');
    const pgOptions = [`-c search_path=${schema}`];
    if (options.statementTimeoutMs !== undefined)
      pgOptions.push(`-c statement_timeout=${Math.floor(options.statementTimeoutMs)}`);
    const own = new pg.Pool({
      connectionString: options.connectionString,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'ccat-recovery',
      options: pgOptions.join(' '),
    });
    const onError = options.onError ?? (() => undefined);
    // pg-pool listens for 'error' only on idle clients: it takes its listener off a client it hands
    // out, so a backend terminated (57P01) or a socket reset during a query emits 'error' on the
    // Client with nobody listening, and Node ends the process. This listener stays for the client's
    // whole life; each client reports its loss once (it is not queryable afterwards).
    own.on('connect', (client: pg.PoolClient) => {
      options.onConnect?.();
      let reported = false;
      client.on('error', (e: Error) => {
        if (reported) return;
        reported = true;
        onError(e);
      });
    });
    // pg-pool re-emits an idle client's error on the pool (after removing the client); the
    // client's own listener above has reported it already.
    own.on('error', () => undefined);
    pool = options.preparedStatements === false ? own : preparingPool(own);
  }
  // Every statement's parameters made storable (NUL, lone surrogates): see sanitize.ts.
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: storablePool(pool) }) });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => (closing ??= db.destroy());
  return { db, schema, close, [Symbol.asyncDispose]: close };
}
