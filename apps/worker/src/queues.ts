// Queues are named `${site}_${location}_${operationType}` (as in CCAT): a worker serves only the
// locations it can reach. Each operation type runs at one "home" location of its row; the naming
// rule and the home columns live in @ccat/db, which the admin side shares.
import {
  HOME_LOCATION_COLUMN,
  OPERATION_TABLES,
  queueName,
  TYPES_AT_LOCATION,
  type Database,
  type OperationRef,
  type OperationType,
} from '@ccat/db';
import { ValidationError } from '@ccat/errors';
import { heartbeatKeys } from '@ccat/heartbeat';
import { sql, type Kysely } from 'kysely';
import { z } from 'zod';

/**
 * BullMQ's prefix for a deployment's `keyPrefix`: under the same Redis Cluster hash tag as the
 * heartbeat and health keys (`ccat:` → `ccat:{ccat}:bull`; `app:{t}:` → `app:{t}:bull`), so every
 * BullMQ script, which touches several keys of one queue, runs on one cluster node (BullMQ's docs,
 * "Redis Cluster": use a prefix in braces). Throws ConfigurationError for a malformed prefix.
 */
export function bullPrefix(keyPrefix: string): string {
  return `${heartbeatKeys({ keyPrefix }).namespace}bull`;
}

/** The job a queue carries: which attempt of which operation. BullMQ delivers; PostgreSQL decides. */
export const jobPayloadSchema = z.strictObject({
  operationType: z.enum(Object.keys(OPERATION_TABLES) as [OperationType, ...OperationType[]]),
  operationId: z.string().regex(/^[1-9][0-9]{0,18}$/, 'a positive integer as a string'),
  attempt: z.number().int().min(0).max(2_147_483_647),
});
export type JobPayload = z.infer<typeof jobPayloadSchema>;

/** The deterministic job id of an attempt (DESIGN §4): re-dispatching the same attempt never duplicates it. */
export function jobId(ref: OperationRef): string {
  return `${ref.type}:${ref.id}:${ref.attempt}`;
}

/**
 * The queue of each given operation (one query per call, joined to its home location and site): its
 * type's isolation queue when the row's run_alone is set (fixed for an attempt, so a dispatch and a
 * re-dispatch of one attempt pick the same queue).
 */
export async function queuesFor(
  db: Kysely<Database>,
  type: OperationType,
  ids: readonly string[],
): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (ids.length === 0) return out;
  const alone = `${OPERATION_TABLES[type].prefix}run_alone`;
  const { rows } = await sql<{ id: string; site: string; location: string; alone: boolean }>`
    SELECT o.id::text AS id, s.short_name AS site, l.name AS location, o.${sql.ref(alone)} AS alone
    FROM ${sql.table(OPERATION_TABLES[type].table)} o
    JOIN data_locations l ON l.id = o.${sql.ref(HOME_LOCATION_COLUMN[type])}
    JOIN sites s ON s.id = l.site_id
    WHERE o.id = ANY(${[...ids]}::bigint[])`.execute(db);
  for (const r of rows) out.set(r.id, queueName(r.site, r.location, type, r.alone));
  return out;
}

export interface ServedLocation {
  readonly site: string;
  readonly location: string;
}

/**
 * The characters a site short name or location name may not hold: BullMQ refuses `:` in a queue name
 * (`Queue name cannot contain :`), `{}` are Redis Cluster hash tags, `/` splits the CLI's
 * `site/location`; whitespace and control characters are invisible in logs (the rule `sites apply`
 * enforces on what it writes).
 */
const UNUSABLE_IN_QUEUE_NAME = /[/:{}\s\p{Cc}]/u;

/** A data location whose queues a worker cannot serve, and why (for the one warning it logs). */
export interface SkippedLocation extends ServedLocation {
  readonly reason: string;
}

/**
 * The queues a worker serving `served` ('all' = every active location) listens on: each type's queue
 * and its isolation queue. A location whose site or name cannot be part of a queue name (a row written
 * by hand, say `a:b`) is left out and passed to `onSkipped` once, so one bad row does not stop the
 * worker from serving the others. Throws ValidationError for a configured location that is not an
 * active data location.
 */
export async function servedQueues(
  db: Kysely<Database>,
  served: 'all' | readonly ServedLocation[],
  onSkipped: (location: SkippedLocation) => void = () => {},
): Promise<{ name: string; type: OperationType; alone: boolean }[]> {
  const rows = await db
    .selectFrom('data_locations as l')
    .innerJoin('sites as s', 's.id', 'l.site_id')
    .select(['s.short_name as site', 'l.name as location', 'l.location_type'])
    .where('l.active', '=', true)
    .execute();
  const wanted =
    served === 'all'
      ? rows
      : rows.filter((r) => served.some((s) => s.site === r.site && s.location === r.location));
  if (served !== 'all') {
    for (const s of served) {
      if (!rows.some((r) => r.site === s.site && r.location === s.location)) {
        throw new ValidationError(
          `configured location ${s.site}/${s.location} is not an active data location`,
        );
      }
    }
  }
  const usable = wanted.filter((r) => {
    const bad = [r.site, r.location].find((n) => n === '' || UNUSABLE_IN_QUEUE_NAME.test(n));
    if (bad === undefined) return true;
    onSkipped({
      site: r.site,
      location: r.location,
      reason: `${JSON.stringify(bad)} cannot be part of a queue name (empty, or it holds /, :, {, }, whitespace or a control character)`,
    });
    return false;
  });
  return usable.flatMap((r) =>
    TYPES_AT_LOCATION[r.location_type].flatMap((type) =>
      [false, true].map((alone) => ({ name: queueName(r.site, r.location, type, alone), type, alone })),
    ),
  );
}
