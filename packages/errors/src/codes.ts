// Over 300 lines: one table row per error code of every CCAT service (about a hundred codes), kept whole so it can be read at once.
// Every error code the CCAT services raise, in one table: its class, whether a retry may help, its
// own retry limit, what it means and what an operator does about it. The classifier builds its
// errors from these rows; the runbook is generated from them; a repository check
// (tooling/repo-checks) fails when a code written anywhere in src/ is missing here.

/** What one error code is. */
export interface ErrorCodeEntry {
  /**
   * The `name` of the class an error with this code is: one of `builtinErrorClasses`, or a subclass
   * another package declares (`NotificationDeliveryError`). Absent for a code written as a plain
   * record, without an error object (`STALLED`).
   */
  readonly class?: string;
  /**
   * Whether running the operation again may help. `'varies'`: the place that raises it decides
   * (the `meaning` says when); such a code is never produced by the classifier.
   */
  readonly retryable: boolean | 'varies';
  /** Its own retry limit, which wins over the operation type's and the global default. */
  readonly maxRetries?: number;
  /** What happened, in one sentence (no full stop). */
  readonly meaning: string;
  /** What an operator does: the "To do" line of a permanent-failure notification. */
  readonly advice?: string;
}

const entry = (
  cls: string | undefined,
  retryable: boolean | 'varies',
  meaning: string,
  extra: { maxRetries?: number; advice?: string } = {},
): ErrorCodeEntry => ({ ...(cls !== undefined && { class: cls }), retryable, meaning, ...extra });

const net = (meaning: string, retryable = true): ErrorCodeEntry => entry('NetworkError', retryable, meaning);
const storage = (meaning: string, retryable: boolean, extra?: { maxRetries?: number; advice?: string }) =>
  entry('StorageError', retryable, meaning, extra);
const dbOp = (meaning: string, retryable: boolean, advice?: string): ErrorCodeEntry =>
  entry('DatabaseOperationError', retryable, meaning, advice === undefined ? {} : { advice });
const redisReply = (word: string, meaning: string): ErrorCodeEntry =>
  entry('RedisConnectionError', true, `Redis answered ${word}: ${meaning}`);
const notify = (retryable: boolean | 'varies', meaning: string): ErrorCodeEntry =>
  entry('NotificationDeliveryError', retryable, meaning);
const invalid = (meaning: string): ErrorCodeEntry => entry('ValidationError', false, meaning);
const refused = (meaning: string): ErrorCodeEntry => entry('ConfigurationError', false, meaning);

/** Every error code, by code. */
export const ERROR_CODES = {
  // The hierarchy's own codes (each class's `defaultCode`).
  DATA_OPERATION_ERROR: entry(
    'CCATDataOperationError',
    true,
    'An error of the CCAT pipeline that no subclass describes',
  ),
  RETRYABLE_ERROR: entry('RetryableError', true, 'Anything worth another try'),
  NON_RETRYABLE_ERROR: entry('NonRetryableError', false, 'Anything a retry cannot fix: a human has to look'),
  PERMANENT_ERROR: entry('PermanentError', false, 'Known to be final'),
  CONFIGURATION_ERROR: entry(
    'ConfigurationError',
    false,
    'Configuration is wrong; no retry helps until someone changes it',
    {
      advice:
        'The configuration is wrong. Fix it (the message names the setting) and restart the service, then retry.',
    },
  ),
  VALIDATION_FAILED: entry(
    'ValidationError',
    false,
    'Input (a job payload, an argument, a config value) failed validation',
    { advice: 'Input failed validation. The message names the field; fix the producer of that input.' },
  ),
  UNKNOWN_OPERATION_TYPE: entry(
    'UnknownOperationTypeError',
    false,
    'An operation type that no table and no handler knows',
  ),
  INVALID_OPERATION_ID: entry(
    'InvalidOperationIdError',
    false,
    'An operation id that is not a positive 64-bit integer',
  ),
  INTERNAL_ERROR: entry(
    'InternalError',
    false,
    "A bug in our code (TypeError, RangeError, Node's ERR_INVALID_ARG_*): retrying repeats it",
    {
      advice:
        'A bug in ccat-recovery or an operation. Report it with the log lines around the operation id; retry after a fix.',
    },
  ),
  PACKAGE_ERROR: entry(
    'PackageError',
    'varies',
    'Creating a raw data package or a transfer package failed; not retryable when its input is not ready (no raw files, members not packaged, transfer not finished or not arrived)',
  ),
  TRANSFER_ERROR: entry('DataTransferError', true, 'Moving data between sites failed'),
  BBCP_ERROR: entry(
    'BBCPError',
    'varies',
    'The bbcp/rsync-style transfer command failed (`context.exitCode`, `context.stderr`); not retryable when its exit code is one a retry cannot change (`transport.nonRetryableExitCodes`)',
    {
      advice:
        'The transfer command failed. Read its exit code and stderr in the context; check the remote host and credentials, then retry.',
    },
  ),
  TRANSPORT_COMMAND_UNAVAILABLE: entry(
    'BBCPError',
    true,
    'The transfer command (`transport.command`) could not be started at run time: its program is missing or not executable, or a wrapper exited 126/127; a configuration problem, so retried (the worker logs an ERROR) rather than failed at once',
    {
      advice:
        'The worker cannot start its transfer program. Install it in the worker image (the worker logs an ERROR naming it) or fix transport.command, restart the worker, then retry.',
    },
  ),
  NETWORK_ERROR: net('A network peer did not answer, reset, or timed out'),
  STORAGE_ERROR: storage('Reading or writing a data location failed', true),
  SERVICE_UNAVAILABLE: entry('ServiceUnavailableError', true, 'A service we depend on is down or overloaded'),
  REDIS_UNAVAILABLE: entry('RedisConnectionError', true, 'Redis refused or lost the connection'),
  REDIS_COMMAND_FAILED: entry(
    'RedisCommandError',
    false,
    'Redis answered a command with an error that a retry will not change (WRONGTYPE, NOSCRIPT...)',
  ),
  DATA_CORRUPTION: entry('DataCorruptionError', false, 'Data is not what it should be', {
    advice:
      'Data does not match what the database recorded. Inspect the files named in the context before retrying anything.',
  }),
  CHECKSUM_MISMATCH: entry(
    'ChecksumVerificationError',
    true,
    'A checksum did not match: a copy damaged in flight is fixed by copying again, a damaged source is not',
    {
      maxRetries: 2,
      advice:
        'A copy does not match its checksum even after re-copying. Compare the source file with its recorded sha256; if the source is damaged, it needs a human decision. If the source is fine, check the transfer path (disk, network), then retry.',
    },
  ),
  ARCHIVE_CORRUPT: entry(
    'ArchiveCorruptionError',
    false,
    'An archive cannot be read back (truncated tar, bad header)',
    {
      advice:
        'An archive cannot be read back. Re-create the package from the source files (retry the packaging operation), then retry this one.',
    },
  ),
  UNPACK_FAILED: entry('UnpackError', true, 'Unpacking at the destination failed'),
  DESTINATION_EXISTS: entry(
    'DestinationFileExistsError',
    false,
    'The destination already holds a different file under the same name; refusing to overwrite it',
    {
      advice:
        'The destination already holds a different file of the same name. Decide which copy is right, move the other away, then retry.',
    },
  ),
  ARCHIVE_FAILED: entry(
    'ArchiveError',
    'varies',
    'Copying to the long-term archive failed; not retryable when the package has no checksum or transfer package yet',
  ),
  DELETION_FAILED: entry('DeletionError', true, 'Deleting a source copy failed'),
  DELETION_NOT_SAFE: entry(
    'DeletionNotSafeError',
    false,
    'Deletion refused: no archived, verified copy exists, or what is on disk is not exactly the package. Never retried into a deletion',
    {
      advice:
        "Deletion was refused; the message says why: no verified archived copy (check the long-term archive transfer of this package), or what is on disk is not exactly the package (another package's or an unregistered file, a symlink or special file in its directory). Nothing was deleted; never delete by hand before the archive is verified.",
    },
  ),
  DATABASE_ERROR: entry('DatabaseError', true, 'PostgreSQL failed'),
  DB_CONNECTION: entry(
    'DatabaseConnectionError',
    true,
    'PostgreSQL is unreachable or dropped the connection',
  ),
  DB_OPERATION_FAILED: dbOp(
    'A statement failed for a reason in the statement or the data (constraint, syntax, permission)',
    false,
  ),
  ABORTED: entry(
    'OperationAbortedError',
    true,
    'The work was cancelled through its AbortSignal (shutdown, lease lost)',
  ),
  TIMEOUT: entry('OperationTimeoutError', true, 'The work took longer than allowed'),
  LEASE_LOST: entry(
    'LeaseLostError',
    false,
    "A fenced write changed no row: this worker's attempt is no longer the current one",
  ),
  STALLED_TOO_OFTEN: entry(
    'StalledTooOftenError',
    false,
    'The operation stalled more often than its retry limit allows',
    {
      advice:
        'The task died, froze or hung on every attempt. Check the worker hosts (OOM kills, hung mounts, `dmesg`), and the heartbeat/progress timeouts for this operation type; then retry it.',
    },
  ),
  POISON_OPERATION: entry(
    'PoisonOperationError',
    false,
    'Its worker process died or froze every time it ran alone in it, more often than its retry limit allows',
    {
      advice:
        'It took down every worker process that ran it alone. Find what kills the process (worker log, `dmesg`: OOM kill, native crash, a blocking call), fix it or its data, then retry it.',
    },
  ),
  UNKNOWN_ERROR: entry(
    'UnknownError',
    true,
    'What nobody recognised: retried once, so a deterministic bug does not burn the whole retry budget',
    {
      maxRetries: 1,
      advice:
        'An error nobody classified. Read the logs around the operation id; if it is transient, retry; consider classifying it.',
    },
  ),

  // What `classifyError` gives Node system errors (by errno).
  CONNECTION_RESET: net('The peer reset the connection'),
  CONNECTION_REFUSED: net('Nothing listens at the address, or a firewall refused'),
  CONNECTION_ABORTED: net('The connection was aborted on this side'),
  TIMED_OUT: net('Connecting or waiting for the peer timed out'),
  BROKEN_PIPE: net('The peer closed the connection while we wrote'),
  DNS_TEMPORARY_FAILURE: net('The name server did not answer in time'),
  HOST_UNREACHABLE: net('No route to the host, or the host is down'),
  NETWORK_UNREACHABLE: net('No route to the network, or the network is down'),
  HOST_NOT_FOUND: net('A host name does not resolve', false),
  STREAM_CLOSED: net('A stream closed before it ended'),
  STORAGE_FULL: storage('A disk or quota is full; retried with backoff, deletions may free space', true, {
    maxRetries: 5,
    advice:
      'A disk is full. Free space at the location named in the context (deletions may be waiting), then retry.',
  }),
  PERMISSION_DENIED: storage('The worker may not read or write a path', false, {
    advice:
      'The worker may not read or write a path. Fix ownership/permissions of the location named in the context, then retry.',
  }),
  READ_ONLY_STORAGE: storage('A location is mounted read-only', false, {
    advice: 'A location is mounted read-only. Remount it read-write, then retry.',
  }),
  FILE_NOT_FOUND: storage('A file the operation needs is missing', false, {
    advice:
      'A file the operation needs is missing. Check that the location is mounted and the file was not moved or deleted, then retry.',
  }),
  PATH_INVALID: storage(
    'A path names a file where a directory is needed (or the reverse), or is too long',
    false,
  ),
  RESOURCE_EXHAUSTED: storage('The process ran out of file descriptors or memory', true),
  STORAGE_BUSY: storage('A file or mount is busy', true),
  STORAGE_STALE_HANDLE: storage('A network file system handle went stale', true),
  STORAGE_IO_ERROR: storage('The device reported an I/O error', true, { maxRetries: 2 }),
  CROSS_DEVICE: storage('A rename crossed file systems', false),

  // What `classifyError` gives PostgreSQL errors (by SQLSTATE).
  DB_SERIALIZATION_FAILURE: dbOp('A serializable transaction conflicted with another', true),
  DB_DEADLOCK: dbOp('PostgreSQL broke a deadlock by cancelling this statement', true),
  DB_QUERY_CANCELED: dbOp('The statement was cancelled (statement_timeout, or an administrator)', true),
  DB_LOCK_NOT_AVAILABLE: dbOp('A lock could not be taken (lock_timeout, NOWAIT)', true),
  DB_SHUTDOWN: entry('DatabaseConnectionError', true, 'PostgreSQL is shutting down or starting'),
  DB_UNIQUE_VIOLATION: dbOp(
    'A unique constraint refused a write',
    false,
    'A database constraint refused a write: the data model and the files disagree. Inspect the rows named in the context.',
  ),
  DB_CONFIGURATION: dbOp(
    'The database, schema or a startup parameter (behind a connection pooler) does not exist or is refused',
    false,
  ),
  DB_PREPARED_STATEMENT_CONFLICT: dbOp(
    'A transaction-mode connection pooler mixed up named prepared statements',
    true,
    'A connection pooler in transaction mode (PgBouncer before 1.21, or without max_prepared_statements) cannot keep named prepared statements. Set database.preparedStatements to false (CCAT_DATABASE__PREPARED_STATEMENTS=false) and restart; the operation is retried meanwhile.',
  ),
  DB_INSUFFICIENT_RESOURCES: entry(
    'DatabaseError',
    true,
    'PostgreSQL ran out of a resource (disk, memory, connections)',
  ),
  DB_SYSTEM_ERROR: entry('DatabaseError', true, "An error in PostgreSQL's host system (I/O)", {
    maxRetries: 2,
  }),
  DB_INTEGRITY_VIOLATION: dbOp('A constraint (foreign key, not null, check) refused a write', false),
  DB_SYNTAX_OR_ACCESS: dbOp('A statement is malformed or touches what it may not', false),
  DB_DATA_EXCEPTION: dbOp('A value does not fit its column (out of range, bad format)', false),
  DB_AUTH_FAILED: dbOp('PostgreSQL refused the credentials', false),
  DB_INVALID_TRANSACTION_STATE: dbOp('A statement came in a transaction state that does not allow it', false),
  DB_INTERNAL_ERROR: dbOp('PostgreSQL reported an internal error (data corruption, a server bug)', false),
  DB_ERROR: entry('DatabaseError', true, 'Any other PostgreSQL error; retried once', { maxRetries: 1 }),

  // What `classifyError` gives transient Redis replies (`REDIS_<first word>`) and command timeouts.
  REDIS_LOADING: redisReply('LOADING', 'it is loading its data set'),
  REDIS_BUSY: redisReply('BUSY', 'a script is running'),
  REDIS_TRYAGAIN: redisReply('TRYAGAIN', 'a cluster slot is moving'),
  REDIS_CLUSTERDOWN: redisReply('CLUSTERDOWN', 'the cluster is down'),
  REDIS_MASTERDOWN: redisReply('MASTERDOWN', 'the replica lost its primary'),
  REDIS_READONLY: redisReply('READONLY', 'the server is a replica (a failover is under way)'),
  REDIS_OOM: redisReply('OOM', 'it reached maxmemory'),
  REDIS_TIMEOUT: entry('RedisConnectionError', true, 'Redis did not answer a command in time'),

  // Codes written where they are raised, in other packages.
  STALLED: entry(
    undefined,
    true,
    "The attempt's heartbeat deadline passed (the process died or froze, or progress stopped)",
  ),
  RAW_FILE_CONFLICT: invalid(
    'A raw file is already registered with another size or sha256; nothing registered',
  ),
  INVALID_PROGRESS: invalid('A heartbeat progress value is not JSON or too long'),
  INVALID_TRACK_OPTIONS: invalid('The options of a heartbeat `track` call are invalid'),
  INVALID_DETAILS: invalid("A tracked task's details are too long"),
  INVALID_TASK_ID: entry(
    'InvalidTaskIdError',
    false,
    'A heartbeat task id is empty, too long or has characters outside the allowed set',
  ),
  HEARTBEAT_LOST: entry(
    'HeartbeatLostError',
    true,
    "A tracked task's heartbeat was missing or past its deadline at a beat; the task is told to stop",
  ),
  HEARTBEAT_CLOSED: entry(
    'HeartbeatClosedError',
    true,
    'A task was tracked on a heartbeat emitter that is closing; it can run on another worker',
  ),
  SHUTDOWN: entry('ShutdownAbort', true, 'The worker is shutting down and stopped the task'),
  INJECTED_FAULT: entry('RetryableError', true, "A retryable fault injected by the worker's fault rules"),
  INJECTED_PERMANENT_FAULT: entry(
    'NonRetryableError',
    false,
    "A permanent fault injected by the worker's fault rules",
  ),
  HTTP_LISTEN_FAILED: refused('The health and metrics HTTP server cannot listen on its address'),
  DASHBOARD_LISTEN_FAILED: refused('The dashboard cannot listen on its address'),
  REDIS_DATABASE: refused('Redis refused the database number `redis.url` names'),
  DATABASE_REFUSED: refused('PostgreSQL refused the configuration at start (database, schema, credentials)'),
  DB_SEARCH_PATH: refused(
    "The connection's search_path does not lead to database.schema (a pooler dropped the startup parameter `options`)",
  ),
  SERVICE_NAME_IN_USE: entry(
    'ServiceNameInUseError',
    false,
    'Another live process refreshes the health record of this service name (two workers with one workerId)',
  ),
  REDIS_CONFIGURATION: refused(
    'The Redis connection settings are malformed: a host:port of a sentinel or cluster node, or redis.url',
  ),

  // Delivery of a notification by a channel (the outbox relay retries the retryable ones).
  NOTIFICATION_DELIVERY_FAILED: notify(
    'varies',
    'A channel could not deliver; not retryable when it has no recipients',
  ),
  NOTIFY_ABORTED: notify(true, 'A send was aborted (shutdown, lost lease); it is sent again'),
  NOTIFY_REJECTED: notify(false, 'The mail server or Slack refused the message or the recipients for good'),
  NOTIFY_AUTH_FAILED: notify(false, 'The SMTP credentials or the Slack token are wrong or lack rights'),
  NOTIFY_MISCONFIGURED: notify(false, 'The mail transport is misconfigured'),
  NOTIFY_DEFERRED: notify(true, 'The mail server deferred the message'),
  NOTIFY_RATE_LIMITED: notify(true, 'Slack rate-limited the channel; sent again after the wait it asks'),
  NOTIFY_UNAVAILABLE: notify(true, 'The mail server or Slack is unreachable or failing'),
  NOTIFY_DELIVERY_FAILED: notify(true, 'Sending failed for a reason not recognised'),
} as const satisfies Readonly<Record<string, ErrorCodeEntry>>;

/** A code of the table. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The row of a code; undefined for a code not in the table (another service's own). */
export function errorCodeEntry(code: string): ErrorCodeEntry | undefined {
  return Object.hasOwn(ERROR_CODES, code) ? ERROR_CODES[code as ErrorCode] : undefined;
}

/** The advice for a code without its own (`GENERIC_ADVICE`'s text, here so the table stays whole). */
export const GENERIC_ADVICE =
  'Read the error and the logs around the operation id, fix the cause, then retry.';

/** The advice for an error code: its row's `advice`, else GENERIC_ADVICE. */
export function adviceFor(code: string): string {
  return errorCodeEntry(code)?.advice ?? GENERIC_ADVICE;
}
