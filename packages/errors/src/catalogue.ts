// The one catalogue of what an operator reads: the event kinds (declared here, once), their level,
// what was done and what to do, the digest phrase, and the advice per error code. The recovery
// handlers, the notifier, the monitor and the docs generator all read it from here.

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
    action: 'The recovery of a stalled attempt keeps failing; the operation is left as it was.',
    advice: "Check the monitor's log and the database; the monitor keeps trying with backoff.",
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
 * What to do, by error code: the runbook's advice (docs/runbook.md is generated from it), carried
 * in a permanent failure's "To do" line. Codes without an entry get GENERIC_ADVICE.
 */
export const ERROR_ADVICE: Readonly<Record<string, string>> = {
  STALLED_TOO_OFTEN:
    'The task died, froze or hung on every attempt. Check the worker hosts (OOM kills, hung mounts, `dmesg`), and the heartbeat/progress timeouts for this operation type; then retry it.',
  POISON_OPERATION:
    'It took down every worker process that ran it alone. Find what kills the process (worker log, `dmesg`: OOM kill, native crash, a blocking call), fix it or its data, then retry it.',
  CHECKSUM_MISMATCH:
    'A copy does not match its checksum even after re-copying. Compare the source file with its recorded sha256; if the source is damaged, it needs a human decision. If the source is fine, check the transfer path (disk, network), then retry.',
  ARCHIVE_CORRUPT:
    'An archive cannot be read back. Re-create the package from the source files (retry the packaging operation), then retry this one.',
  DATA_CORRUPTION:
    'Data does not match what the database recorded. Inspect the files named in the context before retrying anything.',
  STORAGE_FULL:
    'A disk is full. Free space at the location named in the context (deletions may be waiting), then retry.',
  PERMISSION_DENIED:
    'The worker may not read or write a path. Fix ownership/permissions of the location named in the context, then retry.',
  READ_ONLY_STORAGE: 'A location is mounted read-only. Remount it read-write, then retry.',
  FILE_NOT_FOUND:
    'A file the operation needs is missing. Check that the location is mounted and the file was not moved or deleted, then retry.',
  DESTINATION_EXISTS:
    'The destination already holds a different file of the same name. Decide which copy is right, move the other away, then retry.',
  DELETION_NOT_SAFE:
    "Deletion was refused; the message says why: no verified archived copy (check the long-term archive transfer of this package), or what is on disk is not exactly the package (another package's or an unregistered file, a symlink or special file in its directory). Nothing was deleted; never delete by hand before the archive is verified.",
  HOST_NOT_FOUND: 'A host name does not resolve. Check the transfer configuration and DNS.',
  BBCP_ERROR:
    'The transfer command failed. Read its exit code and stderr in the context; check the remote host and credentials, then retry.',
  CONFIGURATION_ERROR:
    'The configuration is wrong. Fix it (the message names the setting) and restart the service, then retry.',
  VALIDATION_FAILED: 'Input failed validation. The message names the field; fix the producer of that input.',
  INTERNAL_ERROR:
    'A bug in ccat-recovery or an operation. Report it with the log lines around the operation id; retry after a fix.',
  UNKNOWN_ERROR:
    'An error nobody classified. Read the logs around the operation id; if it is transient, retry; consider classifying it.',
  DB_PREPARED_STATEMENT_CONFLICT:
    'A connection pooler in transaction mode (PgBouncer before 1.21, or without max_prepared_statements) cannot keep named prepared statements. Set database.preparedStatements to false (CCAT_DATABASE__PREPARED_STATEMENTS=false) and restart; the operation is retried meanwhile.',
  DB_UNIQUE_VIOLATION:
    'A database constraint refused a write: the data model and the files disagree. Inspect the rows named in the context.',
};

/** The advice for a code without its own entry. */
export const GENERIC_ADVICE =
  'Read the error and the logs around the operation id, fix the cause, then retry.';

/** The advice for an error code: its entry in ERROR_ADVICE, else GENERIC_ADVICE. */
export function adviceFor(code: string): string {
  return Object.hasOwn(ERROR_ADVICE, code) ? ERROR_ADVICE[code]! : GENERIC_ADVICE;
}
