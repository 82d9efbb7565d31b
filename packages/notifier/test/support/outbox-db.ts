// A migrated schema of its own for one test file, and the PostgreSQL outbox store over it.
import { createDatabase, createPgOutboxStore, migrateToLatest, type CcatDatabase } from '@ccat/db';
import { createTestSchema } from '@ccat/test-support';
import type { OutboxStore } from '../../src/index.js';

export interface OutboxDb {
  readonly database: CcatDatabase;
  readonly db: CcatDatabase['db'];
  /** Typed as the notifier's interface: this line is the compile-time check that the two fit. */
  readonly store: OutboxStore;
  teardown(): Promise<void>;
}

export async function setupOutboxDb(label: string): Promise<OutboxDb> {
  const schema = await createTestSchema(label);
  const database = createDatabase({ connectionString: schema.url, schema: schema.schema, max: 8 });
  await migrateToLatest(database.db, { schema: schema.schema });
  const store: OutboxStore = createPgOutboxStore(database.db);
  return {
    database,
    db: database.db,
    store,
    async teardown() {
      await database.close();
      await schema.drop();
    },
  };
}
