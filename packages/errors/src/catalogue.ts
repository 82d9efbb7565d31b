// The one catalogue of what an operator reads: the event kinds (declared here, once), their level,
// what was done and what to do, and the digest phrase (the advice per error code is in codes.ts,
// beside the rest of each code's row). The recovery handlers, the notifier, the monitor and the docs
// generator all read it from here.

/** Notification levels, most severe first (DESIGN §7). */
export const NOTIFICATION_LEVELS = ['ERROR', 'WARNING', 'INFO'] as const;
export type NotificationLevel = (typeof NOTIFICATION_LEVELS)[number];

/** What an operator reads about one event kind. */
export interface EventKindText {
  readonly level: NotificationLevel;
  /** Recorded as a decision in operation_events (DESIGN §3); otherwise only notified. */
  readonly recorded: boolean;
  /** What the system did (a notification's "Action"). */
  readonly action?: string;
  /** What the operator does (a notification's "What to do"). */
  readonly advice?: string;
  /** A digest's title: "37 data_transfer <phrase> with CODE in 10 min". */
  readonly phrase?: string;
}

/**
 * Every event kind of the recovery system, with its text. Levels per DESIGN §7: permanent failure
 * and failed recovery → ERROR; stall recovered (and a lost lease) → WARNING; retries → INFO.
 */
export const EVENT_CATALOGUE = {
  completed: { level: 'INFO', recorded: true },
  retry_scheduled: {
    level: 'INFO',
    recorded: true,
    action: 'Reset to PENDING; it runs again after a backoff.',
    advice: 'Nothing.',
    phrase: 'operations were retried',
  },
  permanent_failure: {
    level: 'ERROR',
    recorded: true,
    action: 'Marked FAILED; no more automatic retries.',
    advice: 'Find the cause in the error, fix it, then retry the operation (ccat-recovery retry).',
    phrase: 'operations failed',
  },
  stall_recovered: {
    level: 'WARNING',
    recorded: true,
    action: 'Its heartbeat deadline passed; reset to PENDING for another attempt.',
    advice: 'Nothing, unless it repeats: then check the worker host.',
    phrase: 'operations stalled and were recovered',
  },
  stall_exhausted: {
    level: 'ERROR',
    recorded: true,
    action: 'Stalled more often than its retry limit allows; marked FAILED.',
    advice: 'Check the worker host (crash, out of memory, hung I/O), then retry the operation.',
    phrase: 'operations stalled too often and failed',
  },
  lease_lost: { level: 'WARNING', recorded: true },
  manual_retry: {
    level: 'INFO',
    recorded: true,
    action: 'Reset to PENDING by an operator.',
    advice: 'Nothing.',
  },
  released: { level: 'INFO', recorded: true },
  redispatched: { level: 'INFO', recorded: true },
  recovery_failing: {
    level: 'ERROR',
    recorded: false,
    action:
      'The monitor keeps retrying the recovery with backoff (at most every monitor.recoveryRetryMaxMs); the row stays in progress until a recovery succeeds.',
    advice:
      "Read the monitor's log lines for this member, fix the cause (database errors, a custom handler), or recover it by hand with the retry command in the details.",
    phrase: 'stall recoveries keep failing',
  },
  work_unserved: {
    level: 'WARNING',
    recorded: false,
    action: 'Nothing changed: the operations wait (pending or scheduled) in a queue no live worker serves.',
    advice:
      "Start a worker that serves the queue's location and operation type (its `serve` and `operationTypes`), or bring back the one that died; `ccat-recovery status` lists the queues and the waiting operations.",
    phrase: 'queues had work no live worker serves',
  },
  liveness_bounds_mismatch: {
    level: 'WARNING',
    recorded: false,
    action:
      "Nothing changed. A longer worker bound is honoured while the worker's health record says it is alive; with a shorter one its dead tasks are found later than it expects.",
    advice:
      "Set the worker's `heartbeat.livenessTimeoutMs` and the monitor's `monitor.livenessTimeoutMs` to the same value (and `heartbeat.intervalMs` to the monitor's `heartbeatIntervalMs`), then restart the one you changed.",
  },
  redis_eviction_policy: {
    level: 'WARNING',
    recorded: false,
    action:
      'Reported once per policy by each monitor; `ccat_redis_maxmemory_policy_ok` is 0 until it is fixed.',
    advice:
      'Set `maxmemory-policy noeviction` on Redis (redis.conf, or CONFIG SET): under memory pressure any other policy may evict queued jobs and heartbeats. If CONFIG is disabled, confirm the policy with your Redis provider.',
  },
} as const satisfies Record<string, EventKindText>;

/** The event kinds of the recovery system. */
export type EventKind = keyof typeof EVENT_CATALOGUE;
/** Every event kind, in catalogue order. */
export const EVENT_KINDS = Object.keys(EVENT_CATALOGUE) as readonly EventKind[];
/** An event kind as stored: ours, or another CCAT service's own. */
export type AnyEventKind = EventKind | (string & {});

/** The catalogue entry of a kind; undefined for another service's kind. */
export function eventKindText(kind: string): EventKindText | undefined {
  return Object.hasOwn(EVENT_CATALOGUE, kind) ? EVENT_CATALOGUE[kind as EventKind] : undefined;
}

/** A kind's level; kinds not in the catalogue are INFO (logged, not sent unless routed). */
export function eventLevel(kind: string): NotificationLevel {
  return eventKindText(kind)?.level ?? 'INFO';
}

/**
 * The `last_error` of a notification the outbox claim gives up on: its delivery attempts reached
 * the limit without a settle (its relay died mid-attempt), given as `<this> (<n> attempts)`, then
 * `; last error: <previous last_error>` when there was one. Both outbox stores (PostgreSQL in
 * @ccat/db, memory in @ccat/notifier) write exactly this.
 */
export const NOTIFICATION_EXHAUSTED_TEXT =
  'undeliverable: delivery attempts used up, the last one never settled (its relay stopped or lost the lease)';
