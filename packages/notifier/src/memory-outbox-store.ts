// An outbox in process memory, with the same semantics as the PostgreSQL one (leases, per-target
// results, dedup windows and digests). For services without PostgreSQL and for tests. Every method
// runs without an await in the middle, so concurrent relays in one process cannot interleave.
import { randomUUID } from 'node:crypto';
import { NOTIFICATION_EXHAUSTED_TEXT } from '@ccat/errors';
import type { Notification, NotificationInput } from './notification.js';
import type {
  ChannelResult,
  ClaimedNotification,
  ClaimRequest,
  ClaimResult,
  DigestSummary,
  OutboxLease,
  OutboxStore,
  Settlement,
} from './outbox-store.js';

export type OutboxStatus = 'pending' | 'sent' | 'failed' | 'digested';

/** A row, as `rows()` shows it. Times are epoch ms. */
export interface MemoryOutboxRow {
  readonly id: string;
  readonly notification: Notification & { readonly id: string };
  readonly status: OutboxStatus;
  readonly attempts: number;
  readonly nextAttemptAt: number;
  readonly lockedBy: string | undefined;
  readonly channelResults: Readonly<Record<string, ChannelResult>>;
  readonly sentAt: number | undefined;
  readonly lastError: string | undefined;
  /** The digest this row is counted in. */
  readonly digestId: string | undefined;
  /** Set on a first-of-window row: when its dedup window ends. */
  readonly windowUntil: number | undefined;
  /** Set on a digest row: the first-of-window row it summarises. */
  readonly digestOf: string | undefined;
}

export interface MemoryOutboxStore extends OutboxStore {
  /** Copies of every row, oldest first. */
  rows(): MemoryOutboxRow[];
}

type Row = { -readonly [K in keyof MemoryOutboxRow]: MemoryOutboxRow[K] };

export interface MemoryOutboxStoreOptions {
  /** The clock (epoch ms); tests may drive it. */
  readonly now?: () => number;
}

/** Creates an empty in-memory outbox. */
export function createMemoryOutboxStore(options: MemoryOutboxStoreOptions = {}): MemoryOutboxStore {
  const now = options.now ?? Date.now;
  const rows = new Map<string, Row>();
  let seq = 0;

  const insert = (n: Omit<Notification, 'id'>, extra: Partial<Row> = {}): Row => {
    const id = String(++seq);
    const row: Row = {
      id,
      notification: { ...n, id },
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now(),
      lockedBy: undefined,
      channelResults: {},
      sentAt: undefined,
      lastError: undefined,
      digestId: undefined,
      windowUntil: undefined,
      digestOf: undefined,
      ...extra,
    };
    rows.set(id, row);
    return row;
  };

  const summarise = (digest: Row, maxExamples: number): DigestSummary | undefined => {
    const leader = digest.digestOf === undefined ? undefined : rows.get(digest.digestOf);
    if (leader === undefined) return undefined;
    const members = [leader, ...[...rows.values()].filter((r) => r.digestId === digest.id)];
    const times = members.map((r) => r.notification.time.getTime());
    return {
      dedupKey: digest.notification.dedupKey ?? '',
      count: members.length,
      firstAt: new Date(Math.min(...times)),
      lastAt: new Date(Math.max(...times)),
      examples: members.slice(0, maxExamples).map((r) => ({
        id: r.id,
        subject: r.notification.subject,
        time: r.notification.time,
        ...(r.notification.operation !== undefined && { operation: r.notification.operation }),
      })),
    };
  };

  const owned = (lease: OutboxLease): Row | undefined => {
    const row = rows.get(lease.id);
    return row !== undefined && row.status === 'pending' && row.lockedBy === lease.token ? row : undefined;
  };

  return {
    enqueue(input: NotificationInput): Promise<string> {
      const { id: _ignored, ...rest } = input;
      const n: Omit<Notification, 'id'> = {
        ...rest,
        context: input.context ?? {},
        time: input.time ?? new Date(now()),
      };
      return Promise.resolve(insert(n).id);
    },

    claim(req: ClaimRequest): Promise<ClaimResult> {
      const t = now();
      let exhausted = 0;
      if (req.maxAttempts !== undefined)
        for (const r of rows.values())
          if (
            r.status === 'pending' &&
            r.nextAttemptAt <= t &&
            r.attempts >= req.maxAttempts &&
            r.notification.level !== 'ERROR'
          ) {
            r.status = 'failed';
            r.lockedBy = undefined;
            r.lastError = exhaustedError(r.attempts, r.lastError);
            exhausted++;
          }
      const due = [...rows.values()]
        .filter((r) => r.status === 'pending' && r.nextAttemptAt <= t)
        .sort((a, b) => a.nextAttemptAt - b.nextAttemptAt || Number(a.id) - Number(b.id))
        .slice(0, Math.max(1, req.limit));
      const deliver: Row[] = [];
      const undecided = new Map<string, Row[]>();
      for (const r of due) {
        const key = r.notification.dedupKey;
        if (
          key !== undefined &&
          req.dedupWindowMs > 0 &&
          r.windowUntil === undefined &&
          r.digestOf === undefined
        ) {
          const group = undecided.get(key);
          if (group === undefined) undecided.set(key, [r]);
          else group.push(r);
        } else deliver.push(r);
      }
      let digested = 0;
      for (const [key, group] of undecided) {
        group.sort((a, b) => Number(a.id) - Number(b.id));
        let open = [...rows.values()]
          .filter((r) => r.notification.dedupKey === key && r.windowUntil !== undefined && r.windowUntil > t)
          .sort((a, b) => (b.windowUntil ?? 0) - (a.windowUntil ?? 0))[0];
        if (open === undefined) {
          open = group.shift()!;
          open.windowUntil = t + req.dedupWindowMs;
          deliver.push(open);
        }
        if (group.length === 0) continue;
        const leader = open;
        let digest = [...rows.values()].find((r) => r.digestOf === leader.id);
        if (digest === undefined) {
          const { id: _id, ...copy } = leader.notification;
          digest = insert(copy, { digestOf: leader.id, nextAttemptAt: leader.windowUntil ?? t });
        }
        for (const r of group) {
          r.status = 'digested';
          r.digestId = digest.id;
          digested++;
        }
      }
      const claimed: ClaimedNotification[] = deliver.map((r) => {
        r.lockedBy = `${req.owner}:${randomUUID()}`;
        r.nextAttemptAt = t + req.leaseMs;
        r.attempts += 1;
        const digest = r.digestOf === undefined ? undefined : summarise(r, req.maxExamples);
        return {
          lease: { id: r.id, token: r.lockedBy },
          notification: r.notification,
          attempts: r.attempts,
          channelResults: { ...r.channelResults },
          ...(digest !== undefined && { digest }),
        };
      });
      return Promise.resolve({ claimed, digested, exhausted });
    },

    recordChannel(lease: OutboxLease, target: string, result: ChannelResult): Promise<boolean> {
      const row = owned(lease);
      if (row !== undefined) row.channelResults = { ...row.channelResults, [target]: result };
      return Promise.resolve(row !== undefined);
    },

    settle(lease: OutboxLease, s: Settlement): Promise<boolean> {
      const row = owned(lease);
      if (row === undefined) return Promise.resolve(false);
      row.lockedBy = undefined;
      switch (s.kind) {
        case 'sent':
          row.status = 'sent';
          row.sentAt = now();
          break;
        case 'failed':
          row.status = 'failed';
          row.lastError = s.error;
          break;
        case 'retry':
          row.nextAttemptAt = now() + Math.max(0, s.delayMs);
          row.lastError = s.error;
          break;
        case 'release':
          row.nextAttemptAt = now() + Math.max(0, s.delayMs);
          row.attempts = Math.max(0, row.attempts - 1);
          break;
      }
      return Promise.resolve(true);
    },

    renew(leases: readonly OutboxLease[], leaseMs: number): Promise<readonly string[]> {
      const held: string[] = [];
      for (const lease of leases) {
        const row = owned(lease);
        if (row === undefined) continue;
        row.nextAttemptAt = now() + leaseMs;
        held.push(row.id);
      }
      return Promise.resolve(held);
    },

    rows(): MemoryOutboxRow[] {
      return [...rows.values()].map((r) => ({ ...r, channelResults: { ...r.channelResults } }));
    },
  };
}

/** The last_error of a row the claim gave up on, as the PostgreSQL store writes it. */
function exhaustedError(attempts: number, lastError: string | undefined): string {
  const why = `${NOTIFICATION_EXHAUSTED_TEXT} (${attempts} attempts)`;
  return lastError === undefined ? why : `${why}; last error: ${lastError}`;
}
