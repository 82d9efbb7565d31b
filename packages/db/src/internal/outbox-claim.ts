// The outbox claim (see outbox-store.ts): one transaction that gives up rows whose attempts are spent,
// folds alike rows into digests under per-key advisory locks, and leases the rest to one relay.
import { randomUUID } from 'node:crypto';
import { NOTIFICATION_EXHAUSTED_TEXT, truncate, type NotificationLevel } from '@ccat/errors';
import { sql, type Kysely } from 'kysely';
import { MAX_MESSAGE } from '../limits.js';
import { insertNotification } from './row-writer.js';
import type {
  OutboxChannelResult,
  OutboxClaimed,
  OutboxClaimRequest,
  OutboxDigestSummary,
  OutboxNotification,
  OutboxOperation,
} from '../outbox-store.js';
import type { Database } from '../schema.js';

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
export const secs = (ms: number) => sql`make_interval(secs => ${Math.max(0, ms) / 1000})`;
export const ids = (list: readonly string[]) => sql`${list}::bigint[]`;
/**
 * How long, in ms, an uncommitted claim may hold its row locks while its relay sends nothing (idle in
 * the claim transaction) or one of its statements runs: a third of the lease, at least 1 s. The server
 * then ends the session and the rows are free at once (the claim never committed, so they carry no
 * lease). A committed claim is bounded by its lease.
 */
export function claimHoldBoundMs(leaseMs: number): number {
  return Math.max(1000, Math.floor(leaseMs / 3));
}

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
    // The digest row copies its leader's (already bounded and sanitised) values, held back until the
    // window closes.
    const column = (c: string) => sql.ref(c);
    const { rows: created } = await insertNotification(
      ['level', 'event_kind', 'subject', 'body', 'context', 'dedup_key'].map(column),
      { type: column('operation_type'), id: column('operation_id') },
      {
        from: sql`notifications WHERE id = ${leader}`,
        nextAttemptAt: column('window_until'),
        digestOf: column('id'),
      },
    ).execute(trx);
    digestId = created[0]!.id;
  }
  await sql`UPDATE notifications SET status = 'digested', digest_id = ${digestId}, locked_by = NULL,
    locked_until = NULL, updated_at = now() WHERE id = ANY(${ids(group.map((r) => r.id))})`.execute(trx);
  return { deliver, digested: group.length };
}

/** Claims due rows for `req.owner` (see PgOutboxStore.claim); `namespace` prefixes the advisory-lock keys. */
export async function claimDue(db: Kysely<Database>, namespace: string, req: OutboxClaimRequest) {
  const limit = Math.max(1, Math.min(10_000, Math.floor(req.limit)));
  const token = `${truncate(req.owner, 150)}:${randomUUID()}`;
  return db.transaction().execute(async (trx) => {
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
            last_error = left(${NOTIFICATION_EXHAUSTED_TEXT} || ' (' || attempts || ' attempts)'
              || coalesce('; last error: ' || last_error, ''), ${MAX_MESSAGE}),
            updated_at = now()
          WHERE id = ANY(${ids(spent.map((r) => r.id))})`.execute(trx);
    const spentIds = new Set(spent.map((r) => r.id));
    const undecided = new Map<string, RawRow[]>();
    const digestKeys = new Set<string>();
    const deliver: RawRow[] = [];
    for (const r of due) {
      if (spentIds.has(r.id)) continue;
      if (r.dedup_key !== null && req.dedupWindowMs > 0 && r.window_until === null && r.digest_of === null) {
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
  });
}
