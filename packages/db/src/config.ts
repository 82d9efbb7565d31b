// The pieces of a service's configuration that only this package can check: the schema its tables
// live in, and per-operation-type settings (keyed by OPERATION_TYPES). @ccat/service's database
// section takes `schemaNameSchema`; the apps refine their per-type records with the check.
import { z } from 'zod';
import { isOperationType, OPERATION_TYPES } from './operation-types.js';
import { assertSchemaName } from './pool.js';

/**
 * `database.schema`: the schema holding the tables (default `public`), a lower-case identifier as
 * `assertSchemaName` accepts it, refused at start otherwise (it is interpolated into DDL and
 * search_path).
 */
export const schemaNameSchema = z
  .string()
  .default('public')
  .refine(
    (s) => {
      try {
        assertSchemaName(s);
        return true;
      } catch {
        return false;
      }
    },
    { message: 'must be a lower-case identifier [a-z_][a-z0-9_]*, at most 63 characters' },
  )
  .describe(
    "Schema holding the tables (the connection's search_path): a lower-case identifier `[a-z_][a-z0-9_]*`, at most 63 characters.",
  );

/**
 * For a zod `superRefine`: per-type settings for a type this system does not run are a typo. Adds
 * one issue per unknown key of `record` (at `path` + the key), naming the known types; never throws.
 */
export function checkOperationTypeKeys(
  record: Readonly<Record<string, unknown>>,
  path: string[],
  ctx: z.RefinementCtx,
): void {
  for (const key of Object.keys(record)) {
    if (!isOperationType(key)) {
      ctx.addIssue({
        code: 'custom',
        path: [...path, key],
        message: `unknown operation type; expected one of ${OPERATION_TYPES.join(', ')}`,
        input: key,
      });
    }
  }
}
