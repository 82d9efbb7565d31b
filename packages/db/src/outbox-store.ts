// The notification outbox over the `notifications` table: the store @ccat/notifier's relay uses.
// It implements the notifier's OutboxStore interface structurally (this package does not depend on
// the notifier; the apps check the fit). Claims are leases: rows are picked with
// FOR NO KEY UPDATE SKIP LOCKED, marked locked_by/locked_until and not due again until the lease
// lapses, so several relays share one outbox and a crashed relay's rows come back. Every write after
// the claim is fenced on the lease token. Dedup decisions for one key are serialised with a
// transaction-scoped advisory lock on that key.
import type { NotificationLevel } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { classified } from './internal/classified.js';
import { claimDue, ids, secs } from './internal/outbox-claim.js';
import { insertNotification, notificationValues } from './internal/row-writer.js';
import { keyedStatus } from './internal/state-machine.js';
import { MAX_MESSAGE } from './limits.js';
import { parseOperationId } from './operation-types.js';
import { storedJson, storedText } from './sanitize.js';
import type { Database } from './schema.js';

/** A leased row is found by its id; its status is checked, never used to find it (state-machine.ts keyedStatus). */
const PENDING = keyedStatus('pending');

export { claimHoldBoundMs } from './internal/outbox-claim.js';

/** The operation a notification is about. */
export interface OutboxOperation {
  readonly type: string;
  readonly id: string;
  readonly attempt?: number;
}

/** A notification as the outbox stores it (the notifier's `Notification`). */
export interface OutboxNotification {
  readonly id: string;
  readonly level: NotificationLevel;
  readonly eventKind: string;
  readonly subject: string;
  readonly body: string;
  readonly context: Readonly<Record<string, unknown>>;
  readonly dedupKey?: string;
  readonly time: Date;
  readonly operation?: OutboxOperation;
}

/** What `enqueue` takes (the notifier's `NotificationInput`). The attempt is kept in `context.attempt`. */
export type OutboxNotificationInput = Omit<OutboxNotification, 'id' | 'time' | 'context'> & {
  readonly time?: Date;
  readonly context?: Readonly<Record<string, unknown>>;
};

export interface OutboxChannelResult {
  readonly status: 'sent' | 'failed' | 'retrying';
  readonly at: string;
  readonly attempts: number;
  readonly error?: string;
  readonly code?: string;
}

export interface OutboxLease {
  readonly id: string;
  readonly token: string;
}

export interface OutboxDigestSummary {
  readonly dedupKey: string;
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  readonly examples: readonly {
    readonly id: string;
    readonly subject: string;
    readonly time: Date;
    readonly operation?: OutboxOperation;
  }[];
}

export interface OutboxClaimed {
  readonly lease: OutboxLease;
  readonly notification: OutboxNotification;
  readonly attempts: number;
  readonly channelResults: Readonly<Record<string, OutboxChannelResult>>;
  readonly digest?: OutboxDigestSummary;
}

export interface OutboxClaimRequest {
  readonly owner: string;
  readonly limit: number;
  readonly leaseMs: number;
  readonly dedupWindowMs: number;
  readonly maxExamples: number;
  /**
   * The delivery-attempt limit: a due row whose attempts reached it (its last relay died before
   * settling) is marked failed by the claim instead of being claimed again, so attempts never pass
   * the limit. ERROR rows are exempt (an undelivered ERROR is never given up, DESIGN §7). Absent: none.
   */
  readonly maxAttempts?: number;
}

export type OutboxSettlement =
  | { readonly kind: 'sent' }
  | { readonly kind: 'failed'; readonly error: string }
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: string }
  | { readonly kind: 'release'; readonly delayMs: number };

export interface PgOutboxStore {
  enqueue(notification: OutboxNotificationInput): Promise<string>;
  claim(request: OutboxClaimRequest): Promise<{
    readonly claimed: readonly OutboxClaimed[];
    readonly digested: number;
    readonly exhausted: number;
  }>;
  recordChannel(lease: OutboxLease, target: string, result: OutboxChannelResult): Promise<boolean>;
  settle(lease: OutboxLease, settlement: OutboxSettlement): Promise<boolean>;
  /**
   * Extends the leases still held to `leaseMs` from now (PostgreSQL's clock), each fenced on its
   * token (`locked_by`) and on `status = 'pending'`. Returns the ids extended; a lease not in the
   * answer is lost (another relay claimed the row, or it was settled). Idempotent.
   */
  renew(leases: readonly OutboxLease[], leaseMs: number): Promise<readonly string[]>;
}

export interface PgOutboxStoreOptions {
  /** Namespace of the advisory-lock keys that serialise dedup decisions (default `ccat:outbox:`). */
  readonly lockNamespace?: string;
}

/**
 * The outbox store over `notifications`. `claim` runs in its own transaction, so `db` must be a
 * root Kysely instance (not a transaction). `enqueue` may run in the caller's transaction.
 */
export function createPgOutboxStore(db: Kysely<Database>, options: PgOutboxStoreOptions = {}): PgOutboxStore {
  const namespace = options.lockNamespace ?? 'ccat:outbox:';

  return {
    enqueue(n: OutboxNotificationInput): Promise<string> {
      return classified(async () => {
        const operationId = n.operation === undefined ? null : parseOperationId(n.operation.id);
        const context = {
          ...n.context,
          ...(n.operation?.attempt !== undefined && { attempt: n.operation.attempt }),
        };
        const target = { type: n.operation?.type ?? null, id: operationId };
        const { rows } = await insertNotification(notificationValues({ ...n, context }), target, {
          ...(n.time !== undefined && { createdAt: n.time }),
        }).execute(db);
        return String(rows[0]!.id);
      });
    },

    claim: (req: OutboxClaimRequest) => classified(() => claimDue(db, namespace, req)),

    recordChannel(lease: OutboxLease, target: string, result: OutboxChannelResult): Promise<boolean> {
      return classified(async () => {
        const r = await sql`UPDATE notifications
          SET channel_results = channel_results || jsonb_build_object(${target}::text, ${storedJson(result)}::jsonb),
            updated_at = now()
          WHERE id = ${lease.id} AND locked_by = ${lease.token} AND status = ${PENDING}`.execute(db);
        return Number(r.numAffectedRows ?? 0) > 0;
      });
    },

    renew(leases: readonly OutboxLease[], leaseMs: number): Promise<readonly string[]> {
      if (leases.length === 0) return Promise.resolve([]);
      return classified(async () => {
        const { rows } = await sql<{ id: string }>`UPDATE notifications n
          SET locked_until = clock_timestamp() + ${secs(leaseMs)},
            next_attempt_at = clock_timestamp() + ${secs(leaseMs)}, updated_at = now()
          FROM unnest(${ids(leases.map((l) => l.id))}, ${leases.map((l) => l.token)}::text[]) AS l(id, token)
          WHERE n.id = l.id AND n.locked_by = l.token AND n.status = ${PENDING}
          RETURNING n.id`.execute(db);
        return rows.map((r) => String(r.id));
      });
    },

    settle(lease: OutboxLease, s: OutboxSettlement): Promise<boolean> {
      let set;
      switch (s.kind) {
        case 'sent':
          set = sql`status = 'sent', sent_at = now()`;
          break;
        case 'failed':
          set = sql`status = 'failed', last_error = ${storedText(s.error, MAX_MESSAGE)}`;
          break;
        case 'retry':
          set = sql`next_attempt_at = clock_timestamp() + ${secs(s.delayMs)}, last_error = ${storedText(s.error, MAX_MESSAGE)}`;
          break;
        case 'release':
          set = sql`next_attempt_at = clock_timestamp() + ${secs(s.delayMs)}, attempts = GREATEST(attempts - 1, 0)`;
          break;
      }
      return classified(async () => {
        const r =
          await sql`UPDATE notifications SET ${set}, locked_by = NULL, locked_until = NULL, updated_at = now()
          WHERE id = ${lease.id} AND locked_by = ${lease.token} AND status = ${PENDING}`.execute(db);
        return Number(r.numAffectedRows ?? 0) > 0;
      });
    },
  };
}

/** Undelivered notifications of one level (see countUndeliveredNotifications). */
export interface UndeliveredNotifications {
  readonly level: NotificationLevel;
  /** Still pending: tried at least once without success (being retried), or due and not yet taken by a relay. */
  readonly pending: number;
  /** Given up (`failed`): a target refused for good, or a non-ERROR row ran out of attempts. */
  readonly failed: number;
  /** `created_at` of the oldest of them. */
  readonly oldestAt: Date;
}

/**
 * Notifications not delivered, by level (levels with none are left out): rows `failed`, and rows
 * `pending` that were tried (attempts > 0) or are due now. Digests waiting for their window and
 * rows waiting out a rate limit are not counted. Read-only; one grouped query. What `ccat-recovery
 * status` shows and the monitor's `ccat_notifications_undelivered` gauge reads (DESIGN §7: an ERROR
 * that could not be delivered stays visible).
 */
export async function countUndeliveredNotifications(
  db: Kysely<Database>,
): Promise<UndeliveredNotifications[]> {
  return classified(async () => {
    const { rows } = await sql<{
      level: NotificationLevel;
      pending: number;
      failed: number;
      oldest_at: Date;
    }>`
      SELECT level, count(*) FILTER (WHERE status = 'pending')::int AS pending,
        count(*) FILTER (WHERE status = 'failed')::int AS failed, min(created_at) AS oldest_at
      FROM notifications
      WHERE status = 'failed' OR (status = 'pending' AND (attempts > 0 OR next_attempt_at <= clock_timestamp()))
      GROUP BY level ORDER BY level`.execute(db);
    return rows.map((r) => ({ level: r.level, pending: r.pending, failed: r.failed, oldestAt: r.oldest_at }));
  });
}
