// The service's PostgreSQL pool, opened from its `database` section, and migrations at start.
import { createDatabase, migrateWhenReachable, type CcatDatabase } from '@ccat/db';
import type { Logger } from 'pino';
import type { z } from 'zod';
import { ConnectionFaultLog } from './connection-faults.js';
import type { databaseConfigSchema } from './schemas.js';

/**
 * The process's PostgreSQL pool from its `database` section. A lost connection (idle or in use: a
 * terminated backend, a restarted server) never ends the process: it is logged once per outage
 * (`ConnectionFaultLog`), the statement in flight fails with a classified error and takes its own
 * path (retried, recovered later, released), and the pool opens new connections when the server
 * is back. No wait is unbounded: TCP keepalive, `connectTimeoutMs` and `statementTimeoutMs`.
 */
export function openServiceDatabase(
  config: z.output<typeof databaseConfigSchema>,
  applicationName: string,
  logger: Logger,
): CcatDatabase {
  const faults = new ConnectionFaultLog(logger, 'PostgreSQL');
  return createDatabase({
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
 * reason) as the start waits for an unreachable database: `migrateWhenReachable`. Throws what it
 * throws (a refused configuration, the search_path check, a failed migration).
 */
export async function migrateServiceDatabase(
  config: z.output<typeof databaseConfigSchema>,
  applicationName: string,
  logger: Logger,
): Promise<void> {
  const database = openServiceDatabase(
    { ...config, poolSize: 1, statementTimeoutMs: 0 },
    `${applicationName.slice(0, 52)} migrate`,
    logger,
  );
  try {
    await migrateWhenReachable(database.db, {
      schema: config.schema,
      onWaiting: (e) =>
        logger.warn(
          { errorCode: e.code, err: e.message },
          e.code === 'DB_LOCK_NOT_AVAILABLE'
            ? 'another process is migrating the database; waiting for it before migrating'
            : 'PostgreSQL is not reachable; waiting for it before migrating',
        ),
    });
  } finally {
    await database.close();
  }
}
