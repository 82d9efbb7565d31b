// Where each operation type writes. The worker writes exactly here (through partialPath), and
// cleanup removes what interrupted runs left here: one definition for both.
import { join } from 'node:path';
import { classifyError, ValidationError } from '@ccat/errors';
import { parseOperationId, parseOperationType, type OperationType } from '@ccat/db';
import type { Executor, OperationOutput } from './handler.js';

/** The directory a transfer package is unpacked into, at the destination location. */
export function unpackDirectory(destinationRoot: string, transferPackageName: string): string {
  return join(destinationRoot, 'unpacked', transferPackageName);
}

/** Joins a location root and a stored relative path, refusing paths that climb out of the root. */
export function locationPath(root: string, relativePath: string): string {
  if (relativePath.startsWith('/') || relativePath.split(/[\\/]/).includes('..')) {
    throw new ValidationError(
      `relative path ${JSON.stringify(relativePath.slice(0, 200))} leaves its location`,
    );
  }
  return join(root, relativePath);
}

async function rootOf(db: Executor, locationId: number): Promise<string> {
  const row = await db
    .selectFrom('data_locations')
    .select('root_path')
    .where('id', '=', locationId)
    .executeTakeFirst();
  if (row === undefined) throw new ValidationError(`data location ${locationId} does not exist`);
  return row.root_path;
}

/** The final outputs of one operation (none when the row does not exist). */
export async function resolveOperationOutputs(
  db: Executor,
  type: OperationType,
  id: string,
): Promise<OperationOutput[]> {
  const t = parseOperationType(type);
  const opId = parseOperationId(id);
  try {
    switch (t) {
      case 'raw_data_package': {
        const r = await db
          .selectFrom('raw_data_packages')
          .select(['buffer_location_id', 'relative_path'])
          .where('id', '=', opId)
          .executeTakeFirst();
        return r
          ? [{ path: locationPath(await rootOf(db, r.buffer_location_id), r.relative_path), kind: 'file' }]
          : [];
      }
      case 'data_transfer_package': {
        const r = await db
          .selectFrom('data_transfer_packages')
          .select(['buffer_location_id', 'relative_path'])
          .where('id', '=', opId)
          .executeTakeFirst();
        return r
          ? [{ path: locationPath(await rootOf(db, r.buffer_location_id), r.relative_path), kind: 'file' }]
          : [];
      }
      case 'data_transfer':
      case 'unpack': {
        const r = await db
          .selectFrom('data_transfers as t')
          .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
          .select(['t.destination_location_id', 'p.relative_path', 'p.name'])
          .where('t.id', '=', opId)
          .executeTakeFirst();
        if (!r) return [];
        const root = await rootOf(db, r.destination_location_id);
        return t === 'data_transfer'
          ? [{ path: locationPath(root, r.relative_path), kind: 'file' }]
          : [{ path: unpackDirectory(root, r.name), kind: 'directory' }];
      }
      case 'long_term_archive_transfer': {
        const r = await db
          .selectFrom('long_term_archive_transfers')
          .select(['destination_location_id', 'relative_path'])
          .where('id', '=', opId)
          .executeTakeFirst();
        return r
          ? [
              {
                path: locationPath(await rootOf(db, r.destination_location_id), r.relative_path),
                kind: 'file',
              },
            ]
          : [];
      }
      case 'deletion': {
        const r = await db
          .selectFrom('physical_copies')
          .select(['location_id', 'relative_path', 'copy_kind'])
          .where('id', '=', opId)
          .executeTakeFirst();
        return r
          ? [
              {
                path: locationPath(await rootOf(db, r.location_id), r.relative_path),
                kind: r.copy_kind === 'raw_files' ? 'directory' : 'file',
              },
            ]
          : [];
      }
    }
  } catch (e) {
    throw classifyError(e);
  }
}
