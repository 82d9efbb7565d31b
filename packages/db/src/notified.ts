// Whether a notification of a dedup key was queued lately: for alerts raised by observing a condition
// on every pass (not by a transition), so the condition is announced once per window, not per pass.
import { sql, type Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import type { Database } from './schema.js';

/**
 * True when the outbox holds a notification with `dedupKey` created within the last `withinMs`
 * (PostgreSQL's clock; any status). One probe of `notifications_dedup_idx`. Throws the classified
 * database error.
 */
export function notifiedWithin(db: Kysely<Database>, dedupKey: string, withinMs: number): Promise<boolean> {
  return classified(async () => {
    const { rows } = await sql<{ one: number }>`
      SELECT 1 AS one FROM notifications
      WHERE dedup_key = ${dedupKey} AND created_at >= now() - make_interval(secs => ${Math.max(0, withinMs) / 1000})
      LIMIT 1`.execute(db);
    return rows.length > 0;
  });
}
