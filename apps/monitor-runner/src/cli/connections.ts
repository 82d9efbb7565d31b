// Opening PostgreSQL and Redis for one CLI run: short connect timeouts (an operator waits at the
// prompt), a first round trip so an unreachable service is reported before any work starts, and
// messages that say which service, where (password redacted) and how to start it.
import {
  appliedMigrations,
  assertSearchPath,
  assertSchemaName,
  createDatabase,
  type CcatDatabase,
  type Database,
} from '@ccat/db';
import { classifyError, ConfigurationError } from '@ccat/errors';
import {
  createRedisConnection,
  describeRedis,
  isConnectionError,
  redactUrl,
  type RedisConfig,
  type RedisConnection,
} from '@ccat/service';
import type { Kysely } from 'kysely';
import type { MonitorConfig } from '../config.js';
import type { Source } from '../admin/sources.js';
import { CliError, ConfigProblem, ServiceUnreachableError, unreachable } from './errors.js';

/** An operator waits at the prompt: a server that does not answer in this time is reported. */
const CONNECT_TIMEOUT_MS = 5_000;

export interface OpenDatabase {
  readonly db: Kysely<Database>;
  readonly schema: string;
  /** The URL with its password redacted, for messages. */
  readonly where: string;
  readonly close: () => Promise<void>;
}

/**
 * Connects to PostgreSQL and makes one round trip. With `requireMigrated`, a schema without the
 * CCAT tables is a configuration problem (wrong DATABASE_SCHEMA, or `migrate` never ran).
 */
async function openDatabase(
  settings: { readonly url: string; readonly schema: string },
  options: {
    readonly requireMigrated: boolean;
    /** Give up on any statement running longer, in ms (a lock held elsewhere must not hang the prompt). */
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
  // No startup parameters: a transaction-mode pooler (PgBouncer) refuses `options`, so the
  // statement bound is the client's (the connection is discarded at expiry; the server drops the
  // statement when it sees the socket close) and search_path is set only for a schema other than
  // public (createDatabase then names database.schema if the pooler refuses it). No named prepared
  // statements either: a CLI run is too short to gain from them.
  const database: CcatDatabase = createDatabase({
    connectionString: settings.url,
    schema,
    max: 2,
    applicationName: 'ccat-recovery',
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    preparedStatements: false,
    ...(options.statementTimeoutMs !== undefined && { statementTimeoutMs: options.statementTimeoutMs }),
  });
  const close = () => database.close();
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
  // On a schema that exists, unqualified names must resolve to it (a pooler may drop `options`);
  // `migrate` checks a schema it creates itself.
  if (applied.length > 0) {
    try {
      await assertSearchPath(database.db, schema);
    } catch (e) {
      await close().catch(() => undefined);
      if (e instanceof ConfigurationError) throw new ConfigProblem(e.message, { cause: e });
      throw unreachable('PostgreSQL', where, e);
    }
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
  readonly redis: RedisConnection;
  /** Where it is (hosts and ports, never a password), for messages. */
  readonly where: string;
  readonly close: () => void;
}

/**
 * Connects to Redis as configured (one server, Sentinel or Cluster) through @ccat/service's one
 * factory, without reconnecting: a CLI run reports the outage instead of waiting it out. Throws
 * ConfigProblem for a URL ioredis cannot read (the URL not shown), ServiceUnreachableError when no
 * answer comes.
 */
async function openRedis(config: RedisConfig): Promise<OpenRedis> {
  const where = describeRedis(config);
  let redis: RedisConnection;
  try {
    redis = createRedisConnection(config, {
      lazyConnect: true,
      connectTimeout: CONNECT_TIMEOUT_MS,
      commandTimeout: CONNECT_TIMEOUT_MS * 2,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
      connectionName: 'ccat-recovery',
    });
  } catch (e) {
    if (e instanceof ConfigurationError) throw new ConfigProblem(e.message);
    throw e;
  }
  // connect() rejects with a bare "Connection is closed."; the reason arrives as an 'error' event.
  let lastError: unknown;
  redis.on('error', (e: unknown) => {
    lastError = e;
  });
  try {
    await redis.connect();
  } catch (e) {
    redis.disconnect();
    throw unreachable('Redis', where, lastError ?? e);
  }
  return { redis, where, close: () => redis.disconnect() };
}

/** Commands that read or reset rows: short statements, on a migrated schema. */
export const QUERIES = { requireMigrated: true, statementTimeoutMs: 60_000 } as const;
/** migrate: may wait for another migrator's lock and run long DDL; the schema may be empty. */
export const MIGRATIONS = { requireMigrated: false } as const;

/**
 * Runs `f` on the database and closes it. Throws ServiceUnreachableError when PostgreSQL cannot be
 * reached, at the start or midway; ConfigProblem for a bad schema or credentials.
 */
export async function withDatabase<T>(
  config: Readonly<MonitorConfig>,
  options: typeof QUERIES | typeof MIGRATIONS,
  f: (open: OpenDatabase) => Promise<T>,
): Promise<T> {
  const open = await openDatabase(config.database, options);
  try {
    return await f(open);
  } catch (e) {
    if (!(e instanceof CliError) && isConnectionError(classifyError(e)))
      throw unreachable('PostgreSQL', open.where, e);
    // A configuration problem found midway (migrate's search_path check): exit 2.
    if (e instanceof ConfigurationError) throw new ConfigProblem(e.message, { cause: e });
    throw e;
  } finally {
    await open.close();
  }
}

/** `open`'s service as a Source: unreachable is a value, not an exception; what opened joins `closers`. */
async function source<O extends { readonly where: string; readonly close: () => unknown }, T>(
  open: () => Promise<O>,
  client: (o: O) => T,
  closers: (() => unknown)[],
): Promise<Source<T>> {
  try {
    const o = await open();
    closers.push(o.close);
    return { ok: true, client: client(o), where: o.where };
  } catch (e) {
    if (!(e instanceof ServiceUnreachableError)) throw e;
    return { ok: false, unavailable: e.down };
  }
}

/**
 * Runs `f` with PostgreSQL and Redis as Sources (for `status`, which shows what it can) and closes
 * what it opened. Throws ConfigProblem for bad configuration, never for an unreachable service.
 */
export async function withSources<T>(
  config: Readonly<MonitorConfig>,
  f: (db: Source<Kysely<Database>>, redis: Source<RedisConnection>) => Promise<T>,
): Promise<T> {
  const closers: (() => unknown)[] = [];
  try {
    const db = await source(
      () => openDatabase(config.database, QUERIES),
      (o) => o.db,
      closers,
    );
    const redis = await source(
      () => openRedis(config.redis),
      (o) => o.redis,
      closers,
    );
    return await f(db, redis);
  } finally {
    for (const close of closers) await Promise.resolve(close()).catch(() => undefined);
  }
}
