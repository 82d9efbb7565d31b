// Opening PostgreSQL and Redis for one CLI run: short connect timeouts (an operator waits at the
// prompt), a first round trip so an unreachable service is reported before any work starts, and
// messages that say which service, where (password redacted) and how to start it.
import {
  appliedMigrations,
  assertSchemaName,
  createDatabase,
  type CcatDatabase,
  type Database,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { ConfigProblem } from './exit-codes.js';
import { redactUrl } from './redact.js';
import { unreachable } from './service-errors.js';

/** An operator waits at the prompt: a server that does not answer in this time is reported. */
const CONNECT_TIMEOUT_MS = 5_000;

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly schema: string;
  /** The URL with its password redacted, for messages. */
  readonly where: string;
  close(): Promise<void>;
}

/**
 * Connects to PostgreSQL and makes one round trip. With `requireMigrated`, a schema without the
 * CCAT tables is a configuration problem (wrong DATABASE_SCHEMA, or `migrate` never ran).
 */
export async function openDatabase(
  settings: { readonly url: string; readonly schema: string },
  options: {
    readonly requireMigrated: boolean;
    /** Cancel any statement running longer (a lock held elsewhere must not hang the prompt). */
    readonly statementTimeoutMs?: number;
  },
): Promise<OpenDatabase> {
  const where = redactUrl(settings.url);
  let schema: string;
  try {
    schema = assertSchemaName(settings.schema);
  } catch (e) {
    throw new ConfigProblem(`database.schema: ${classifyError(e).message}`);
  }
  // Our own pool rather than createDatabase's: a CLI needs a connect timeout (pg's default waits
  // for the operating system, minutes on a dropped route), which DatabaseOptions does not offer.
  const pool = new pg.Pool({
    connectionString: settings.url,
    max: 2,
    application_name: 'ccat-recovery',
    options: [
      `-c search_path=${schema}`,
      ...(options.statementTimeoutMs === undefined
        ? []
        : [`-c statement_timeout=${options.statementTimeoutMs}`]),
    ].join(' '),
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
  });
  // Errors of idle clients reach the next query, which reports them; unhandled they would crash.
  pool.on('error', () => undefined);
  // pg-pool listens only on idle clients: a client checked out when its server goes (a restart, a
  // terminated backend) would emit an unhandled 'error'. Its query fails and is reported instead.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const database: CcatDatabase = createDatabase({ pool });
  const close = async () => {
    await database.close();
    await pool.end();
  };
  let applied: string[];
  try {
    applied = await appliedMigrations(database.db, { schema });
  } catch (e) {
    await close().catch(() => undefined);
    const err = classifyError(e);
    if (err.code === 'DB_AUTH_FAILED' || err.code === 'DB_CONFIGURATION') {
      throw new ConfigProblem(
        `PostgreSQL at ${where} refused the connection: ${err.message} [${err.code}]; check DATABASE_URL / database.url`,
        {
          cause: err,
        },
      );
    }
    throw unreachable('PostgreSQL', where, err);
  }
  if (options.requireMigrated && applied.length === 0) {
    await close();
    throw new ConfigProblem(
      `schema "${schema}" on ${where} has no CCAT migrations applied: check DATABASE_SCHEMA / database.schema, or run: ccat-recovery migrate`,
    );
  }
  return { db: database.db, schema, where, close };
}

export interface OpenRedis {
  readonly redis: Redis;
  readonly where: string;
  close(): void;
}

/** Connects to Redis (no reconnecting: a CLI run reports the outage instead of waiting it out). */
export async function openRedis(url: string): Promise<OpenRedis> {
  const where = redactUrl(url);
  let redis: Redis;
  try {
    redis = new Redis(url, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: CONNECT_TIMEOUT_MS * 2,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      connectionName: 'ccat-recovery',
    });
  } catch {
    // ioredis throws on a malformed URL, with the URL (and its password) in the error: not shown.
    throw new ConfigProblem(
      'redis.url (REDIS_URL) is not a valid Redis URL: expected redis://[user:password@]host[:port][/db]',
    );
  }
  // connect() rejects with a bare "Connection is closed."; the reason arrives as an 'error' event.
  let lastError: unknown;
  redis.on('error', (e) => (lastError = e));
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw unreachable('Redis', where, lastError ?? e);
  }
  return { redis, where, close: () => redis.disconnect() };
}
