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
