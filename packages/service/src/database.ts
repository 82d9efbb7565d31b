// The service's PostgreSQL pool, opened from its `database` section through the pool factory its
// app passes (@ccat/db's `createDatabase`), and migrations at start.
import type { CCATDataOperationError } from '@ccat/errors';
import type { Logger } from 'pino';
import { ConnectionFaultLog } from './connection-faults.js';
import type { DatabaseConfig } from './schemas.js';

/** What `openServiceDatabase` asks of a pool factory; @ccat/db's `createDatabase` takes it as is. */
export interface DatabasePoolOptions {
  /** `database.url`. */
  readonly connectionString: string;
  readonly schema: string;
  /** Pool size. */
  readonly max: number;
  readonly preparedStatements: boolean;
  /** Client-side bound on each statement's round trip, in ms (0: none). */
  readonly statementTimeoutMs: number;
  /** Bound on opening a connection and on waiting for a free one, in ms (0: none). */
  readonly connectTimeoutMs: number;
  /** Shown in pg_stat_activity; at most 63 characters. */
  readonly applicationName: string;
  /** Every connection-level error of a pooled client, once per client. */
  readonly onError: (error: Error) => void;
  /** Once, when the pool turned prepared statements off after the server refused one. */
  readonly onPreparedStatementsRefused: (error: Error) => void;
  /** Each time the pool opened a new connection. */
  readonly onConnect: () => void;
}

/**
 * How a service opens and migrates its database, given by its app: @ccat/db's `createDatabase`
 * and `migrateToLatest`. `D` is the handle the app's code gets (`ServiceContext.database`).
 */
export interface ServiceDatabase<D extends { close(): Promise<void> }> {
  /** Opens a pool; the handle's `close()` ends it. */
  readonly open: (options: DatabasePoolOptions) => D;
  /**
   * Brings `schema` to the latest migration over `database`, waiting while the database cannot be
   * reached or another process holds the migration lock (calling `onWaiting` once per reason, as
   * @ccat/db's `migrateWhenReachable` does); throws what the migration throws.
   */
  readonly migrate: (
    database: D,
    schema: string,
    onWaiting: (error: CCATDataOperationError) => void,
  ) => Promise<unknown>;
}

/**
 * The process's PostgreSQL pool from its `database` section, opened by `driver.open`. A lost
 * connection (idle or in use: a terminated backend, a restarted server) never ends the process: it
 * is logged once per outage (`ConnectionFaultLog`), the statement in flight fails with a classified
 * error and takes its own path (retried, recovered later, released), and the pool opens new
 * connections when the server is back. No wait is unbounded: TCP keepalive, `connectTimeoutMs` and
 * `statementTimeoutMs`.
 */
export function openServiceDatabase<D extends { close(): Promise<void> }>(
  driver: ServiceDatabase<D>,
  config: DatabaseConfig,
  applicationName: string,
  logger: Logger,
): D {
  const faults = new ConnectionFaultLog(logger, 'PostgreSQL');
  return driver.open({
    connectionString: config.url,
    schema: config.schema,
    max: config.poolSize,
    preparedStatements: config.preparedStatements,
    statementTimeoutMs: config.statementTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    applicationName: applicationName.slice(0, 63),
    onError: (e) => faults.lost(e),
    onPreparedStatementsRefused: (e) =>
      logger.warn(
        { err: e.message, errorCode: 'DB_PREPARED_STATEMENT_CONFLICT' },
        'PostgreSQL (or a connection pooler in front of it) refused a prepared statement: prepared statements are off for this process from now; set database.preparedStatements to false (CCAT_DATABASE__PREPARED_STATEMENTS=false) behind PgBouncer in transaction mode',
      ),
    onConnect: () => faults.restored(),
  });
}

/**
 * Brings the schema to the latest migration over a connection of its own without the statement
 * bound (a migration may take longer than any statement of the service), then closes it. A
 * database not reachable yet, or another process's migration, is waited for (logged once per
 * reason) as the start waits for an unreachable database. Throws what `driver.migrate` throws (a refused configuration, the search_path check, a failed migration).
 */
export async function migrateServiceDatabase<D extends { close(): Promise<void> }>(
  driver: ServiceDatabase<D>,
  config: DatabaseConfig,
  applicationName: string,
  logger: Logger,
): Promise<void> {
  const database = openServiceDatabase(
    driver,
    { ...config, poolSize: 1, statementTimeoutMs: 0 },
    `${applicationName.slice(0, 52)} migrate`,
    logger,
  );
  try {
    await driver.migrate(database, config.schema, (e) =>
      logger.warn(
        { errorCode: e.code, err: e.message },
        e.code === 'DB_LOCK_NOT_AVAILABLE'
          ? 'another process is migrating the database; waiting for it before migrating'
          : 'PostgreSQL is not reachable; waiting for it before migrating',
      ),
    );
  } finally {
    await database.close();
  }
}
