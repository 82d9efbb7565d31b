import type { Database } from '@ccat/db';
import { ValidationError } from '@ccat/errors';
import type { Kysely } from 'kysely';

/** The root directory of a data location. */
export async function locationRoot(db: Kysely<Database>, id: number): Promise<string> {
  const row = await db
    .selectFrom('data_locations')
    .select('root_path')
    .where('id', '=', id)
    .executeTakeFirst();
  if (row === undefined) throw new ValidationError(`data location ${id} does not exist`);
  return row.root_path;
}

/** A row the operation needs, or a non-retryable error saying which is missing. */
export function required<T>(row: T | undefined, what: string): T {
  if (row === undefined) throw new ValidationError(`${what} does not exist`);
  return row;
}
