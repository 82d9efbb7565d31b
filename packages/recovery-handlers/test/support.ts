import type { CcatDatabase } from '@ccat/db';
import { migratedDatabase, seedLocations, type TestLocations } from '@ccat/db/testing';
import { createTestSchema } from '@ccat/test-support';

export interface Env {
  readonly database: CcatDatabase;
  readonly locations: TestLocations;
  teardown(): Promise<void>;
}

export async function setup(
  label: string,
  roots: Partial<Record<keyof TestLocations, string>> = {},
): Promise<Env> {
  const t = await createTestSchema(label);
  const database = await migratedDatabase({ url: t.url, schema: t.schema });
  const locations = await seedLocations(database.db, roots);
  return {
    database,
    locations,
    async teardown() {
      await database.close();
      await t.drop();
    },
  };
}
