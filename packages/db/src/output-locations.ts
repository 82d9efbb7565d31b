// Where things live on disk, as stored facts: a location's root directory, and the stored location and
// name of each output an operation writes. Building a filesystem path from these facts is the caller's
// business (@ccat/recovery-handlers `containedPath`, which checks every value); this file only reads.
import { ValidationError } from '@ccat/errors';
import type { Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import { parseOperationId, parseOperationType, type OperationType } from './operation-types.js';
import type { Database } from './schema.js';

/**
 * The root directory of data location `locationId`: its stored `root_path`, unchecked (a caller
 * building a path from it checks it, e.g. with @ccat/recovery-handlers `containedPath`). The one
 * reader of a location's root, for the worker's operations and for cleanup alike.
 *
 * @throws ValidationError (non-retryable) when no such location exists; otherwise the classified
 *   database error.
 */
export function locationRoot(db: Kysely<Database>, locationId: number): Promise<string> {
  return classified(async () => {
    const row = await db
      .selectFrom('data_locations')
      .select('root_path')
      .where('id', '=', locationId)
      .executeTakeFirst();
    if (row === undefined) throw new ValidationError(`data location ${locationId} does not exist`);
    return row.root_path;
  });
}

/**
 * One final output an operation writes, as stored: the root directory of the location it is written
 * at, and what names it there.
 * - `file`: the file at `relativePath` (the row's stored relative path) under `root`.
 * - `unpacked-package`: the directory an unpack fills, named for the transfer package
 *   (`packageName`, meant as one path segment) under `root`.
 * Nothing here is checked as a path yet.
 */
export type OutputLocation =
  | { readonly kind: 'file'; readonly root: string; readonly relativePath: string }
  | { readonly kind: 'unpacked-package'; readonly root: string; readonly packageName: string };

/**
 * The final outputs of operation (`type`, `id`), read from its row and its locations (one query for
 * the row, one per location root; no lock, no write). Which outputs:
 * - `raw_data_package`, `data_transfer_package`: the package file at its buffer location;
 * - `data_transfer`: the transfer package's file at the destination location;
 * - `unpack`: the transfer package's unpack directory at the destination location;
 * - `long_term_archive_transfer`: the archived file at the destination location;
 * - `deletion`: none (a deletion writes nothing).
 *
 * @returns one output per operation (none for a deletion); `[]` when the operation's row does not exist.
 * @throws UnknownOperationTypeError / ValidationError for a `type` or `id` that is not one (before any
 *   query); ValidationError when a row names a location that does not exist; otherwise the classified
 *   database error.
 */
export async function readOutputLocations(
  db: Kysely<Database>,
  type: OperationType,
  id: string,
): Promise<OutputLocation[]> {
  const t = parseOperationType(type);
  const opId = parseOperationId(id);
  const fileAt = async (
    r: { location_id: number; relative_path: string } | undefined,
  ): Promise<OutputLocation[]> =>
    r ? [{ kind: 'file', root: await locationRoot(db, r.location_id), relativePath: r.relative_path }] : [];
  return classified(async (): Promise<OutputLocation[]> => {
    switch (t) {
      case 'raw_data_package':
        return fileAt(
          await db
            .selectFrom('raw_data_packages')
            .select(['buffer_location_id as location_id', 'relative_path'])
            .where('id', '=', opId)
            .executeTakeFirst(),
        );
      case 'data_transfer_package':
        return fileAt(
          await db
            .selectFrom('data_transfer_packages')
            .select(['buffer_location_id as location_id', 'relative_path'])
            .where('id', '=', opId)
            .executeTakeFirst(),
        );
      case 'long_term_archive_transfer':
        return fileAt(
          await db
            .selectFrom('long_term_archive_transfers')
            .select(['destination_location_id as location_id', 'relative_path'])
            .where('id', '=', opId)
            .executeTakeFirst(),
        );
      case 'data_transfer':
      case 'unpack': {
        const r = await db
          .selectFrom('data_transfers as t')
          .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
          .select(['t.destination_location_id', 'p.relative_path', 'p.name'])
          .where('t.id', '=', opId)
          .executeTakeFirst();
        if (!r) return [];
        const root = await locationRoot(db, r.destination_location_id);
        return t === 'data_transfer'
          ? [{ kind: 'file', root, relativePath: r.relative_path }]
          : [{ kind: 'unpacked-package', root, packageName: r.name }];
      }
      case 'deletion':
        return [];
    }
  });
}
