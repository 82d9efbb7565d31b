// The notification outbox over the `notifications` table: the store @ccat/notifier's relay uses.
// It implements the notifier's OutboxStore interface structurally (this package does not depend on
// the notifier; the apps check the fit). Claims are leases: rows are picked with
// FOR NO KEY UPDATE SKIP LOCKED, marked locked_by/locked_until and not due again until the lease
// lapses, so several relays share one outbox and a crashed relay's rows come back. Every write after
// the claim is fenced on the lease token. Dedup decisions for one key are serialised with a
// transaction-scoped advisory lock on that key.
import { randomUUID } from 'node:crypto';
import { classifyError, truncate } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { insertNotification } from './internal/records.js';
import { MAX_MESSAGE } from './limits.js';
import { parseOperationId } from './operation-types.js';
import { storedJson, storedText } from './sanitize.js';
import type { Database, NotificationLevel } from './schema.js';

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

interface RawRow {
  id: string;
  level: NotificationLevel;
  event_kind: string;
  subject: string;
  body: string;
  context: Record<string, unknown> | null;
  dedup_key: string | null;
  operation_type: string | null;
  operation_id: string | null;
  attempts: number;
  channel_results: Record<string, OutboxChannelResult> | null;
  window_until: Date | null;
  digest_of: string | null;
  created_at: Date;
}

const COLUMNS = sql`id, level, event_kind, subject, body, context, dedup_key, operation_type, operation_id,
  attempts, channel_results, window_until, digest_of, created_at`;
const secs = (ms: number) => sql`make_interval(secs => ${Math.max(0, ms) / 1000})`;
const ids = (list: readonly string[]) => sql`${list}::bigint[]`;
/**
 * How long, in ms, an uncommitted claim may hold its row locks while its relay sends nothing (idle in
 * the claim transaction) or one of its statements runs: a third of the lease, at least 1 s. The server
 * then ends the session and the rows are free at once (the claim never committed, so they carry no
 * lease). A committed claim is bounded by its lease.
 */
export function claimHoldBoundMs(leaseMs: number): number {
  return Math.max(1000, Math.floor(leaseMs / 3));
}

/** The last_error of a row the claim gave up on. */
const EXHAUSTED =
  'undeliverable: delivery attempts used up, the last one never settled (its relay stopped or lost the lease)';

function operationOf(
  type: string | null,
  id: string | null,
  context: Record<string, unknown>,
): OutboxOperation | undefined {
  if (type === null || id === null) return undefined;
  const attempt = context['attempt'];
  return { type, id, ...(typeof attempt === 'number' && Number.isInteger(attempt) && { attempt }) };
}

function toNotification(r: RawRow): OutboxNotification {
  const context = r.context ?? {};
  const operation = operationOf(r.operation_type, r.operation_id, context);
  return {
    id: String(r.id),
    level: r.level,
    eventKind: r.event_kind,
    subject: r.subject,
    body: r.body,
    context,
    ...(r.dedup_key !== null && { dedupKey: r.dedup_key }),
    time: r.created_at,
    ...(operation !== undefined && { operation }),
  };
}

async function run<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw classifyError(e);
  }
}

/**
 * The outbox store over `notifications`. `claim` runs in its own transaction, so `db` must be a
 * root Kysely instance (not a transaction). `enqueue` may run in the caller's transaction.
 */
export function createPgOutboxStore(db: Kysely<Database>, options: PgOutboxStoreOptions = {}): PgOutboxStore {
  const namespace = options.lockNamespace ?? 'ccat:outbox:';

  async function summarise(
    trx: Kysely<Database>,
    digest: RawRow,
    maxExamples: number,
  ): Promise<OutboxDigestSummary> {
    const leader = digest.digest_of!;
    const { rows: agg } = await sql<{ n: number; first_at: Date; last_at: Date }>`
      SELECT count(*)::int AS n, min(created_at) AS first_at, max(created_at) AS last_at
      FROM notifications WHERE id = ${leader} OR digest_id = ${digest.id}`.execute(trx);
    const { rows: examples } = await sql<RawRow>`
      SELECT ${COLUMNS} FROM notifications WHERE id = ${leader} OR digest_id = ${digest.id}
      ORDER BY id LIMIT ${Math.max(0, Math.floor(maxExamples))}`.execute(trx);
    const a = agg[0]!;
    return {
      dedupKey: digest.dedup_key ?? '',
      count: a.n,
      firstAt: a.first_at,
      lastAt: a.last_at,
      examples: examples.map((e) => {
        const operation = operationOf(e.operation_type, e.operation_id, e.context ?? {});
        return {
          id: String(e.id),
          subject: e.subject,
          time: e.created_at,
          ...(operation !== undefined && { operation }),
        };
      }),
    };
  }

  /** Folds the undecided rows of one key (under its advisory lock): the first opens a window, the rest join its digest. */
  async function decide(trx: Kysely<Database>, key: string, group: RawRow[], windowMs: number) {
    const { rows: open } = await sql<{ id: string }>`
      SELECT id FROM notifications WHERE dedup_key = ${key} AND window_until > clock_timestamp()
      ORDER BY window_until DESC LIMIT 1`.execute(trx);
    let leader = open[0]?.id;
    const deliver: RawRow[] = [];
    if (leader === undefined) {
      const first = group.shift()!;
      await sql`UPDATE notifications SET window_until = clock_timestamp() + ${secs(windowMs)}, updated_at = now()
        WHERE id = ${first.id}`.execute(trx);
      leader = first.id;
      deliver.push(first);
    }
    if (group.length === 0) return { deliver, digested: 0 };
    const { rows: existing } = await sql<{ id: string }>`
      SELECT id FROM notifications WHERE digest_of = ${leader}`.execute(trx);
    let digestId = existing[0]?.id;
    if (digestId === undefined) {
      const { rows: created } = await sql<{ id: string }>`
        INSERT INTO notifications (level, event_kind, subject, body, context, dedup_key, operation_type, operation_id,
          next_attempt_at, digest_of)
        SELECT level, event_kind, subject, body, context, dedup_key, operation_type, operation_id, window_until, id
        FROM notifications WHERE id = ${leader} RETURNING id`.execute(trx);
      digestId = created[0]!.id;
    }
    await sql`UPDATE notifications SET status = 'digested', digest_id = ${digestId}, locked_by = NULL,
      locked_until = NULL, updated_at = now() WHERE id = ANY(${ids(group.map((r) => r.id))})`.execute(trx);
    return { deliver, digested: group.length };
  }

  return {
    enqueue(n: OutboxNotificationInput): Promise<string> {
      return run(async () => {
        const operationId = n.operation === undefined ? null : parseOperationId(n.operation.id);
        const context = {
          ...n.context,
          ...(n.operation?.attempt !== undefined && { attempt: n.operation.attempt }),
        };
        const target = { type: n.operation?.type ?? null, id: operationId };
        const { rows } = await insertNotification({ ...n, context }, target, {
          ...(n.time !== undefined && { createdAt: n.time }),
        }).execute(db);
        return String(rows[0]!.id);
      });
    },

    claim(req: OutboxClaimRequest) {
      const limit = Math.max(1, Math.min(10_000, Math.floor(req.limit)));
      const token = `${truncate(req.owner, 150)}:${randomUUID()}`;
      return run(() =>
        db.transaction().execute(async (trx) => {
          // The rows are locked from the SELECT to the commit. A relay that freezes (SIGSTOP, a stalled
          // event loop) or whose connection goes silent in between would hold them for as long as the
          // server keeps its session, and every other relay skips them. So the server ends the session
          // (rolling the claim back) once it idles in this transaction, or one statement runs, longer
          // than claimHoldBoundMs: transaction-local settings, fine behind a transaction-mode pooler.
          const bound = String(claimHoldBoundMs(req.leaseMs));
          await sql`SELECT set_config('idle_in_transaction_session_timeout', ${bound}, true),
            set_config('statement_timeout', ${bound}, true)`.execute(trx);
          // NO KEY UPDATE, not UPDATE: inserting a digest row takes a KEY SHARE lock on the first row of
          // its window (digest_of); a claimer re-delivering that row must not block it (or deadlock).
          const { rows: due } = await sql<RawRow>`
            SELECT ${COLUMNS} FROM notifications
            WHERE status = 'pending' AND next_attempt_at <= clock_timestamp()
            ORDER BY next_attempt_at, id LIMIT ${limit}
            FOR NO KEY UPDATE SKIP LOCKED`.execute(trx);
          // A row whose attempts reached the limit without a settle (its relay died mid-attempt) is given
          // up here, not claimed again: attempts never pass the limit. ERROR rows are never given up.
          const max = req.maxAttempts;
          const spent = max === undefined ? [] : due.filter((r) => r.attempts >= max && r.level !== 'ERROR');
          if (spent.length > 0)
            await sql`UPDATE notifications SET status = 'failed', locked_by = NULL, locked_until = NULL,
                last_error = left(${EXHAUSTED} || ' (' || attempts || ' attempts)'
                  || coalesce('; last error: ' || last_error, ''), ${MAX_MESSAGE}),
                updated_at = now()
              WHERE id = ANY(${ids(spent.map((r) => r.id))})`.execute(trx);
          const spentIds = new Set(spent.map((r) => r.id));
          const undecided = new Map<string, RawRow[]>();
          const digestKeys = new Set<string>();
          const deliver: RawRow[] = [];
          for (const r of due) {
            if (spentIds.has(r.id)) continue;
            if (
              r.dedup_key !== null &&
              req.dedupWindowMs > 0 &&
              r.window_until === null &&
              r.digest_of === null
            ) {
              const group = undecided.get(r.dedup_key);
              if (group === undefined) undecided.set(r.dedup_key, [r]);
              else group.push(r);
            } else {
              deliver.push(r);
              if (r.digest_of !== null && r.dedup_key !== null) digestKeys.add(r.dedup_key);
            }
          }
          // One lock per key, in one order for every relay, so claimers never deadlock. A digest's key is
          // locked too: a relay still folding rows into it finishes before the digest is summarised.
          let digested = 0;
          for (const key of [...new Set([...undecided.keys(), ...digestKeys])].sort()) {
            await sql`SELECT pg_advisory_xact_lock(hashtextextended(${namespace + key}, 0))`.execute(trx);
            const group = undecided.get(key);
            if (group === undefined) continue;
            const d = await decide(trx, key, group, req.dedupWindowMs);
            deliver.push(...d.deliver);
            digested += d.digested;
          }
          const exhausted = spent.length;
          if (deliver.length === 0) return { claimed: [], digested, exhausted };
          const { rows: leased } = await sql<{ id: string; attempts: number }>`
            UPDATE notifications SET locked_by = ${token}, locked_until = clock_timestamp() + ${secs(req.leaseMs)},
              next_attempt_at = clock_timestamp() + ${secs(req.leaseMs)}, attempts = attempts + 1, updated_at = now()
            WHERE id = ANY(${ids(deliver.map((r) => r.id))}) RETURNING id, attempts`.execute(trx);
          const attempts = new Map(leased.map((r) => [String(r.id), r.attempts]));
          const claimed: OutboxClaimed[] = [];
          for (const r of deliver.sort((a, b) => Number(BigInt(a.id) - BigInt(b.id)))) {
            const digest = r.digest_of === null ? undefined : await summarise(trx, r, req.maxExamples);
            claimed.push({
              lease: { id: String(r.id), token },
              notification: toNotification(r),
              attempts: attempts.get(String(r.id)) ?? r.attempts + 1,
              channelResults: r.channel_results ?? {},
              ...(digest !== undefined && { digest }),
            });
          }
          return { claimed, digested, exhausted };
        }),
      );
    },

    recordChannel(lease: OutboxLease, target: string, result: OutboxChannelResult): Promise<boolean> {
      return run(async () => {
        const r = await sql`UPDATE notifications
          SET channel_results = channel_results || jsonb_build_object(${target}::text, ${storedJson(result)}::jsonb),
            updated_at = now()
          WHERE id = ${lease.id} AND locked_by = ${lease.token} AND status = 'pending'`.execute(db);
        return Number(r.numAffectedRows ?? 0) > 0;
      });
    },

    renew(leases: readonly OutboxLease[], leaseMs: number): Promise<readonly string[]> {
      if (leases.length === 0) return Promise.resolve([]);
      return run(async () => {
        const { rows } = await sql<{ id: string }>`UPDATE notifications n
          SET locked_until = clock_timestamp() + ${secs(leaseMs)},
            next_attempt_at = clock_timestamp() + ${secs(leaseMs)}, updated_at = now()
          FROM unnest(${ids(leases.map((l) => l.id))}, ${leases.map((l) => l.token)}::text[]) AS l(id, token)
          WHERE n.id = l.id AND n.locked_by = l.token AND n.status = 'pending'
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
      return run(async () => {
        const r =
          await sql`UPDATE notifications SET ${set}, locked_by = NULL, locked_until = NULL, updated_at = now()
          WHERE id = ${lease.id} AND locked_by = ${lease.token} AND status = 'pending'`.execute(db);
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
  return run(async () => {
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
