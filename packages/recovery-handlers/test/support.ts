import { Writable } from 'node:stream';
import type { CcatDatabase } from '@ccat/db';
import { migratedDatabase, seedLocations, type TestLocations } from '@ccat/db/testing';
import { createTestSchema } from '@ccat/test-support';
import { pino, type Logger } from 'pino';

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

/** A pino logger whose lines land in `lines`, parsed. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}
