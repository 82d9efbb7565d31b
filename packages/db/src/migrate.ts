import { classifyError } from '@ccat/errors';
import { Migrator, sql, type Kysely, type MigrationResult } from 'kysely';
import { migrations } from './internal/migrations/index.js';
import { assertSchemaName } from './pool.js';

export interface MigrateResult {
  /** Names applied by this call (empty when already at the latest). */
  readonly applied: readonly string[];
  /** Every migration this package knows. */
  readonly known: readonly string[];
}

/**
 * Brings the schema to the latest migration. Safe to run twice and from several processes at once:
 * a session advisory lock per schema serialises them, and each migration runs in a transaction.
 * Creates the schema if it does not exist. Throws a classified error naming the failed migration.
 */
export async function migrateToLatest<DB>(
  db: Kysely<DB>,
  options: { schema?: string } = {},
): Promise<MigrateResult> {
  const schema = assertSchemaName(options.schema ?? 'public');
  return db.connection().execute(async (conn) => {
    const lockKey = `ccat-recovery:migrate:${schema}`;
    await sql`SELECT pg_advisory_lock(hashtext(${lockKey}))`.execute(conn);
    try {
      await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(conn);
      const migrator = new Migrator({
        db: scopedIntrospection(conn, schema),
        provider: { getMigrations: () => Promise.resolve(migrations) },
        migrationTableSchema: schema,
      });
      const { error, results } = await migrator.migrateToLatest();
      const applied = (results ?? [])
        .filter((r: MigrationResult) => r.status === 'Success')
        .map((r) => r.migrationName);
      if (error !== undefined) {
        const failed = (results ?? []).find((r) => r.status === 'Error')?.migrationName;
        const e = classifyError(error);
        throw Object.assign(e, {
          message: `${failed === undefined ? 'preparing the migrations' : `migration ${failed}`} failed: ${e.message}`,
        });
      }
      return { applied, known: Object.keys(migrations) };
    } finally {
      await sql`SELECT pg_advisory_unlock(hashtext(${lockKey}))`.execute(conn);
    }
  });
}

/**
 * The Migrator asks `introspection` whether its schema and tables exist; kysely's introspector lists
 * the tables of every schema, which is slow on a busy server and fails when another schema is dropped
 * meanwhile. This one looks at our schema only.
 */
function scopedIntrospection<DB>(conn: Kysely<DB>, schema: string): Kysely<DB> {
  const introspection = {
    async getSchemas() {
      const { rows } = await sql<{
        name: string;
      }>`SELECT nspname AS name FROM pg_namespace WHERE nspname = ${schema}`.execute(conn);
      return rows;
    },
    async getTables() {
      const { rows } = await sql<{ name: string; schema: string }>`
        SELECT c.relname AS name, n.nspname AS schema FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = ${schema} AND c.relkind IN ('r', 'p')`.execute(conn);
      return rows.map((r) => ({ ...r, isView: false, columns: [] }));
    },
  };
  return new Proxy(conn, {
    get(target, prop) {
      if (prop === 'introspection') return introspection;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
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
