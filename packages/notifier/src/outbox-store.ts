// The outbox as the relay sees it. @ccat/db implements it over the `notifications` table
// (createPgOutboxStore); createMemoryOutboxStore serves services without PostgreSQL and tests.
import type { Notification, NotificationInput, NotificationOperation } from './notification.js';

/** One of the alike events a digest counts. */
export interface DigestExample {
  readonly id: string;
  readonly subject: string;
  readonly time: Date;
  readonly operation?: NotificationOperation;
}

/** What a digest row summarises: the alike events of one dedup window, the first one included. */
export interface DigestSummary {
  readonly dedupKey: string;
  /** Events in the window, counting the first (which was also sent on its own). */
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** The first few, oldest first. */
  readonly examples: readonly DigestExample[];
}

/**
 * One delivery target's outcome on an outbox row: `sent` and `failed` are final (never tried
 * again), `retrying` is tried again on the row's next attempt.
 */
export interface ChannelResult {
  readonly status: 'sent' | 'failed' | 'retrying';
  /** ISO time of the last try. */
  readonly at: string;
  readonly attempts: number;
  readonly error?: string;
  readonly code?: string;
}

/** Proof of a claim: every write after the claim names it, and a lapsed lease changes nothing. */
export interface OutboxLease {
  readonly id: string;
  readonly token: string;
}

export interface ClaimedNotification {
  readonly lease: OutboxLease;
  readonly notification: Notification & { readonly id: string };
  /** Delivery attempts of this row, this one included. */
  readonly attempts: number;
  /** Per-target results of earlier attempts, by target key. */
  readonly channelResults: Readonly<Record<string, ChannelResult>>;
  /** Present when this row is a digest. */
  readonly digest?: DigestSummary;
}

export interface ClaimRequest {
  /** Who claims (a relay id); kept with the lease, for operators. */
  readonly owner: string;
  readonly limit: number;
  /** The claimed rows are not due again before this passes. */
  readonly leaseMs: number;
  /** Dedup window; 0 turns digests off. */
  readonly dedupWindowMs: number;
  /** Examples per digest summary. */
  readonly maxExamples: number;
  /**
   * The delivery-attempt limit (the notifier's `retry.maxAttempts`). A due row that already used
   * this many attempts (its last relay died before settling) is not claimed again: the claim marks
   * it `failed`, so attempts never pass the limit. ERROR rows are exempt: an undelivered ERROR is
   * never given up for lack of attempts (DESIGN §7), it is claimed and retried on the long backoff.
   * Absent: no limit is applied by the claim.
   */
  readonly maxAttempts?: number;
}

export interface ClaimResult {
  /** Rows to deliver now: plain rows, first-of-window rows and due digests. */
  readonly claimed: readonly ClaimedNotification[];
  /** Rows this claim folded into a digest (they are never delivered on their own). */
  readonly digested: number;
  /** Rows this claim marked failed because their attempts had reached `maxAttempts`. */
  readonly exhausted?: number;
}

/** How a claimed row ends its attempt. */
export type Settlement =
  /** Every target final and sent. */
  | { readonly kind: 'sent' }
  /** Given up: a target failed for good, or attempts ran out. */
  | { readonly kind: 'failed'; readonly error: string }
  /** Try again after the delay (the attempt counts). */
  | { readonly kind: 'retry'; readonly delayMs: number; readonly error: string }
  /** Not attempted (rate limit, shutdown): due again after the delay, the attempt does not count. */
  | { readonly kind: 'release'; readonly delayMs: number };

/**
 * The outbox. Implementations must make `claim` safe for several relays at once (a row is leased
 * to one claimer until it settles or the lease lapses) and decide each row's dedup fate exactly
 * once: the first row of a dedup key opens a window and is delivered; later rows of that key,
 * while the window is open, are marked digested and counted in the window's digest row, which is
 * due when the window ends.
 */
export interface OutboxStore {
  /** Adds a notification (outside a state change; transitions write their own rows). Returns its id. */
  enqueue(notification: NotificationInput): Promise<string>;
  /** Leases up to `limit` due rows, folding alike rows into digests first. */
  claim(request: ClaimRequest): Promise<ClaimResult>;
  /** Records one target's outcome at once, so a sent mail is never sent again. False: lease lost. */
  recordChannel(lease: OutboxLease, target: string, result: ChannelResult): Promise<boolean>;
  /** Ends the attempt and the lease. False: lease lost (another relay has the row now). */
  settle(lease: OutboxLease, settlement: Settlement): Promise<boolean>;
  /**
   * Extends leases still held to `leaseMs` from now (the store's clock), fenced on each lease's
   * token: a lease another relay has taken over, or a row already settled, is not touched. Returns
   * the ids of the rows whose leases were extended; a lease missing from the answer is lost, and its
   * holder must send nothing more and record nothing. Idempotent.
   */
  renew(leases: readonly OutboxLease[], leaseMs: number): Promise<readonly string[]>;
}
