import type { Database } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';

/**
 * Cancels the running statements of this monitor's own connections: only those whose
 * application_name is the pool's own and names `monitorId` (as ccat-monitor's does). Never throws.
 */
export async function cancelOwnStatements(
  db: Kysely<Database>,
  monitorId: string,
  log: Logger,
): Promise<void> {
  try {
    const { rows } = await sql<{ pid: number }>`
      SELECT pid FROM pg_stat_activity
      WHERE application_name = current_setting('application_name')
        AND position(${monitorId} in current_setting('application_name')) > 0
        AND datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'`.execute(db);
    for (const { pid } of rows) await sql`SELECT pg_cancel_backend(${pid})`.execute(db);
    log.info({ cancelled: rows.length }, 'cancelled the blocked pass statements');
  } catch (e) {
    log.warn({ err: classifyError(e).message }, 'cannot cancel the blocked pass statements');
  }
}
