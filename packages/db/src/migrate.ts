import {
  classifyError,
  ConfigurationError,
  DatabaseConnectionError,
  DatabaseOperationError,
  NetworkError,
  OperationTimeoutError,
  ServiceUnavailableError,
  type CCATDataOperationError,
} from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { migrations } from './internal/migrations/index.js';
import { assertSchemaName } from './pool.js';

export interface MigrateResult {
  /** Names applied by this call (empty when already at the latest). */
  readonly applied: readonly string[];
  /** Every migration this package knows. */
  readonly known: readonly string[];
}

/** Default bound on the wait for another process's migration lock, in ms. */
export const MIGRATE_LOCK_TIMEOUT_MS = 60_000;

/** The advisory-lock key of a schema's migrations (`pg_advisory_xact_lock(hashtext(key))`). */
export function migrateLockKey(schema: string): string {
  return `ccat-recovery:migrate:${assertSchemaName(schema)}`;
}

/**
 * Brings the schema to the latest migration. Safe to run twice and from several processes at once,
 * directly or through a transaction-mode pooler (PgBouncer): the whole run is one transaction that
 * first takes a transaction-scoped advisory lock per schema (`pg_advisory_xact_lock`, released by
 * its commit or rollback, never left held on a pooled server connection), then creates the schema
 * if it does not exist, checks that unqualified names resolve to it ({@link assertSearchPath}),
 * applies each pending migration and records it in `<schema>.kysely_migration`.
 *
 * Throws: `ConfigurationError` (`DB_SEARCH_PATH`) when the connection's search_path does not lead
 * to `schema` (nothing is created); `DatabaseOperationError` (`DB_LOCK_NOT_AVAILABLE`, retryable)
 * when another migrate holds the lock longer than `lockTimeoutMs` (default
 * {@link MIGRATE_LOCK_TIMEOUT_MS}; 0 = wait for ever); otherwise a classified error naming the
 * failed migration, with nothing applied (the transaction is rolled back).
 */
export async function migrateToLatest<DB>(
  db: Kysely<DB>,
  options: { schema?: string; lockTimeoutMs?: number } = {},
): Promise<MigrateResult> {
  const schema = assertSchemaName(options.schema ?? 'public');
  const lockTimeoutMs = Math.max(0, Math.floor(options.lockTimeoutMs ?? MIGRATE_LOCK_TIMEOUT_MS));
  const known = Object.keys(migrations).sort();
  return db.transaction().execute(async (trx) => {
    await sql`SELECT set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`.execute(trx);
    try {
      await sql`SELECT pg_advisory_xact_lock(hashtext(${migrateLockKey(schema)}))`.execute(trx);
    } catch (e) {
      const err = classifyError(e);
      if (err.code !== 'DB_LOCK_NOT_AVAILABLE') throw err;
      throw new DatabaseOperationError(
        `another migrate is running on schema "${schema}" (its lock was not free within ${lockTimeoutMs} ms): wait for it to finish, then run migrate again`,
        { code: 'DB_LOCK_NOT_AVAILABLE', retryable: true, cause: e, context: { schema, lockTimeoutMs } },
      );
    }
    // The bound was for the lock: a migration's own DDL waits as the server's settings say.
    await sql`SET LOCAL lock_timeout TO DEFAULT`.execute(trx);
    await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(trx);
    await assertSearchPath(trx, schema);
    await sql`CREATE TABLE IF NOT EXISTS ${sql.id(schema, 'kysely_migration')} (
      name varchar(255) NOT NULL PRIMARY KEY, timestamp varchar(255) NOT NULL)`.execute(trx);
    const done = new Set(
      (
        await sql<{ name: string }>`SELECT name FROM ${sql.id(schema, 'kysely_migration')}`.execute(trx)
      ).rows.map((r) => r.name),
    );
    const applied: string[] = [];
    for (const name of known) {
      if (done.has(name)) continue;
      try {
        await migrations[name]!.up(trx);
      } catch (e) {
        const err = classifyError(e);
        throw Object.assign(err, { message: `migration ${name} failed: ${err.message}` });
      }
      await sql`INSERT INTO ${sql.id(schema, 'kysely_migration')} (name, timestamp)
        VALUES (${name}, ${new Date().toISOString()})`.execute(trx);
      applied.push(name);
    }
    return { applied, known };
  });
}

/**
 * Checks that the connection's unqualified names resolve to `schema` (`current_schema()`): the
 * tables are named without their schema, which the connection's search_path supplies (set through
 * the startup parameter `options` for a schema other than public). A connection pooler that drops
 * that parameter (PgBouncer with `ignore_startup_parameters = options`) leaves the server's
 * search_path, and every statement would run in another schema. One round trip; call once per
 * start, on a schema that exists. Throws `ConfigurationError` (`DB_SEARCH_PATH`) with one line
 * naming `database.schema`, the schema the connection uses and what to change.
 */
export async function assertSearchPath<DB>(db: Kysely<DB>, schema: string): Promise<void> {
  const { rows } = await sql<{
    current: string | null;
    path: string;
  }>`SELECT current_schema() AS current, current_setting('search_path') AS path`.execute(db);
  const current = rows[0]?.current ?? null;
  if (current === schema) return;
  throw new ConfigurationError(
    `database.schema is "${schema}" but the connection's current schema is ${current === null ? 'none' : `"${current}"`} (search_path ${rows[0]?.path ?? '?'}): the schema is set through the startup parameter "options", which a connection pooler (PgBouncer with ignore_startup_parameters = options) drops; make the pooler pass it, or connect as a dedicated database/user whose search_path is set (ALTER ROLE <user> SET search_path = ${schema})`,
    { code: 'DB_SEARCH_PATH', context: { schema, currentSchema: current } },
  );
}

/** Names of applied migrations, oldest first (empty on a fresh schema). */
export async function appliedMigrations<DB>(
  db: Kysely<DB>,
  options: { schema?: string } = {},
): Promise<string[]> {
  const schema = assertSchemaName(options.schema ?? 'public');
  const exists = await sql<{
    t: string | null;
  }>`SELECT to_regclass(${`${schema}.kysely_migration`}) AS t`.execute(db);
  if (exists.rows[0]?.t == null) return [];
  const rows = await sql<{
    name: string;
  }>`SELECT name FROM ${sql.id(schema, 'kysely_migration')} ORDER BY name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** How a schema's applied migrations compare with the ones this code needs. */
export interface MigrationStatus {
  /** Applied migrations, oldest first (empty on a fresh or missing schema). */
  readonly applied: readonly string[];
  /** Every migration this code knows, oldest first. */
  readonly known: readonly string[];
  /** Known but not applied: `ccat-recovery migrate` applies them. */
  readonly pending: readonly string[];
  /** Applied but unknown to this code: the schema is newer than this code (an older release runs). */
  readonly unknown: readonly string[];
  /** True when nothing is pending: this code can work on the schema. */
  readonly upToDate: boolean;
}

/**
 * Compares the schema's applied migrations with this code's: whether the schema is migrated to the
 * version this code needs. One round trip (two on a migrated schema), read-only, takes no lock. A
 * schema that does not exist has every migration pending. Throws (unclassified, as the driver
 * threw it) when PostgreSQL cannot be reached or refuses the connection; callers classify.
 */
export async function migrationStatus<DB>(
  db: Kysely<DB>,
  options: { schema?: string } = {},
): Promise<MigrationStatus> {
  const applied = await appliedMigrations(db, options);
  const known = Object.keys(migrations).sort();
  const done = new Set(applied);
  const knownSet = new Set(known);
  const pending = known.filter((m) => !done.has(m));
  const unknown = applied.filter((m) => !knownSet.has(m));
  return { applied, known, pending, unknown, upToDate: pending.length === 0 };
}

/** Whether a failed migrate is worth waiting out: the server not reachable (yet), or another migrate. */
function worthWaiting(e: CCATDataOperationError): boolean {
  return (
    e.code === 'DB_LOCK_NOT_AVAILABLE' ||
    e instanceof DatabaseConnectionError ||
    e instanceof ServiceUnavailableError ||
    e instanceof NetworkError ||
    e instanceof OperationTimeoutError
  );
}

/**
 * {@link migrateToLatest} for a process that migrates at start: a database that cannot be reached
 * yet (refused or reset connection, unresolved host, a server starting or shutting down, a connect
 * timeout) or another process's migration lock is waited out like an unreachable database at start,
 * retrying every `intervalMs` (default 2 000) until `signal` aborts; `onWaiting` is called with the
 * classified error once per distinct error code waited on. Any other error is thrown at once,
 * classified (credentials or database name refused, the search_path check, a failed migration):
 * no wait cures it. Resolves the result, or `undefined` when `signal` aborted first.
 */
export async function migrateWhenReachable<DB>(
  db: Kysely<DB>,
  options: {
    readonly schema?: string;
    readonly signal?: AbortSignal;
    readonly intervalMs?: number;
    readonly lockTimeoutMs?: number;
    readonly onWaiting?: (error: CCATDataOperationError) => void;
  } = {},
): Promise<MigrateResult | undefined> {
  let reported: string | undefined;
  while (options.signal?.aborted !== true) {
    try {
      return await migrateToLatest(db, {
        ...(options.schema !== undefined && { schema: options.schema }),
        ...(options.lockTimeoutMs !== undefined && { lockTimeoutMs: options.lockTimeoutMs }),
      });
    } catch (e) {
      const err = classifyError(e);
      if (!worthWaiting(err)) throw err;
      if (reported !== err.code) {
        reported = err.code;
        options.onWaiting?.(err);
      }
    }
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(10, options.intervalMs ?? 2_000));
      options.signal?.addEventListener('abort', done, { once: true });
    });
  }
  return undefined;
}
