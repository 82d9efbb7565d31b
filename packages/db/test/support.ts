import { createTestSchema } from '@ccat/test-support';
import type { Kysely } from 'kysely';
import type { CcatDatabase, Database } from '../src/index.js';
import { migratedDatabase, seedLocations, type TestLocations } from '../src/testing.js';

export { seedOperation, setOperationState as setState, sideCounts, type SeedState } from '../src/testing.js';

export interface TestDb {
  readonly database: CcatDatabase;
  readonly db: Kysely<Database>;
  readonly schema: string;
  readonly url: string;
  readonly locations: TestLocations;
  teardown(): Promise<void>;
}

/** An isolated, migrated schema with two sites and their locations. */
export async function setupDb(label: string, max = 4): Promise<TestDb> {
  const t = await createTestSchema(label);
  const database = await migratedDatabase({ url: t.url, schema: t.schema, max });
  const locations = await seedLocations(database.db);
  return {
    database,
    db: database.db,
    schema: t.schema,
    url: t.url,
    locations,
    async teardown() {
      await database.close();
      await t.drop();
    },
  };
}
