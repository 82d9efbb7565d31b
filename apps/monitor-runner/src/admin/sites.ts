// `sites apply`: the sites and data locations of an inventory file (YAML or JSON), upserted by name
// (sites by name, locations by site and name) and reported as created / updated / unchanged.
import { isAbsolute } from 'node:path';
import { checkStoredName, checkStoredPath, LOCATION_TYPES, type Database } from '@ccat/db';
import { ValidationError } from '@ccat/errors';
import type { Kysely } from 'kysely';
import { parse } from 'yaml';
import { z } from 'zod';

/**
 * A site short name or location name: it becomes part of BullMQ queue names
 * (`${site}_${location}_${type}`, where BullMQ refuses `:` and so every worker would fail to start),
 * Redis keys (`{}` are Redis Cluster hash tags) and the CLI's `site/location`; whitespace and
 * control characters would be invisible in logs and tables.
 */
const queueName = z
  .string()
  .min(1)
  .regex(/^[^/:{}\s\p{Cc}]+$/u, 'must not contain /, :, {, }, whitespace or control characters');

const location = z.strictObject({
  name: queueName,
  type: z.enum(LOCATION_TYPES),
  root: z.string().refine(isAbsolute, 'must be an absolute path'),
  active: z.boolean().default(true),
});

const inventorySchema = z.strictObject({
  sites: z.array(
    z.strictObject({
      name: z
        .string()
        .min(1)
        .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters'),
      shortName: queueName,
      locations: z.array(location),
    }),
  ),
});

/** A parsed inventory: `sites[].locations[]` with name, type, absolute root and `active` (default true). */
export type Inventory = z.infer<typeof inventorySchema>;

/**
 * Parses an inventory document (YAML, of which JSON is a subset).
 * @throws Error naming the file and the path of each bad field (`sites.0.locations.1.root: …`).
 */
export function parseInventory(text: string, file: string): Inventory {
  let data: unknown;
  try {
    data = parse(text);
  } catch (e) {
    throw new ValidationError(`${file}: not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
  const parsed = inventorySchema.safeParse(data);
  if (!parsed.success)
    throw new ValidationError(
      `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`).join('; ')}`,
    );
  for (const s of parsed.data.sites) {
    checkStoredName(s.name, 'site name');
    checkStoredName(s.shortName, 'site short name');
    for (const l of s.locations) {
      checkStoredName(l.name, 'location name');
      checkStoredPath(l.root, 'location root path');
    }
  }
  return parsed.data;
}

export type Change = 'created' | 'updated' | 'unchanged';

export interface AppliedItem {
  readonly kind: 'site' | 'location';
  /** `site` or `site/location` (short name). */
  readonly name: string;
  readonly change: Change;
  /** `field: old → new` for updates. */
  readonly details: readonly string[];
}

const diff = (old: Record<string, unknown>, now: Record<string, unknown>) =>
  Object.keys(now)
    .filter((k) => old[k] !== now[k])
    .map((k) => `${k}: ${JSON.stringify(old[k])} → ${JSON.stringify(now[k])}`);

/**
 * Upserts the inventory in one transaction (rolled back with `dryRun`, so the report is the same).
 * Nothing is deleted: sites and locations absent from the file are left as they are.
 */
export async function applyInventory(
  db: Kysely<Database>,
  inventory: Inventory,
  dryRun: boolean,
): Promise<AppliedItem[]> {
  const items: AppliedItem[] = [];
  const rollback = new Error('dry run');
  try {
    await db.transaction().execute(async (trx) => {
      for (const s of inventory.sites) {
        const old = await trx.selectFrom('sites').selectAll().where('name', '=', s.name).executeTakeFirst();
        const details =
          old === undefined ? [] : diff({ shortName: old.short_name }, { shortName: s.shortName });
        const site =
          old === undefined
            ? await trx
                .insertInto('sites')
                .values({ name: s.name, short_name: s.shortName })
                .returning('id')
                .executeTakeFirstOrThrow()
            : old;
        if (details.length > 0)
          await trx.updateTable('sites').set({ short_name: s.shortName }).where('id', '=', old!.id).execute();
        items.push({ kind: 'site', name: s.shortName, change: changeOf(old, details), details });
        for (const l of s.locations) {
          const was = await trx
            .selectFrom('data_locations')
            .selectAll()
            .where('site_id', '=', site.id)
            .where('name', '=', l.name)
            .executeTakeFirst();
          const values = { location_type: l.type, root_path: l.root, active: l.active };
          const changed =
            was === undefined
              ? []
              : diff(
                  { type: was.location_type, root: was.root_path, active: was.active },
                  { type: l.type, root: l.root, active: l.active },
                );
          if (was === undefined)
            await trx
              .insertInto('data_locations')
              .values({ site_id: site.id, name: l.name, ...values })
              .execute();
          else if (changed.length > 0)
            await trx.updateTable('data_locations').set(values).where('id', '=', was.id).execute();
          const name = `${s.shortName}/${l.name}`;
          items.push({ kind: 'location', name, change: changeOf(was, changed), details: changed });
        }
      }
      if (dryRun) throw rollback;
    });
  } catch (e) {
    if (e !== rollback) throw e;
  }
  return items;
}

const changeOf = (old: unknown, details: readonly string[]): Change =>
  old === undefined ? 'created' : details.length > 0 ? 'updated' : 'unchanged';
