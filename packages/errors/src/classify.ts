// Over 300 lines: the one table of classifier rules (56 SQLSTATE, errno, Redis and SMTP rules) beside the code that reads it.
// What third-party code throws, mapped to CCAT errors. Classify at the edge: every catch in the
// pipeline passes what it caught through classifyError before deciding anything.
import { isCcatError, type CCATDataOperationError, type CcatErrorClass } from './base.js';
import {
  DatabaseConnectionError,
  DatabaseError,
  DatabaseOperationError,
  DestinationFileExistsError,
  InternalError,
  NetworkError,
  OperationAbortedError,
  OperationTimeoutError,
  RedisCommandError,
  RedisConnectionError,
  StorageError,
  UnknownError,
  ValidationError,
} from './errors.js';
import { describe, safeGet, safeString, toSafeJson, truncate } from './internal/safe.js';

interface Rule {
  readonly cls: CcatErrorClass;
  readonly code: string;
  readonly retryable: boolean;
  readonly maxRetries?: number;
}

const rule = (cls: CcatErrorClass, code: string, retryable: boolean, maxRetries?: number): Rule =>
  maxRetries === undefined ? { cls, code, retryable } : { cls, code, retryable, maxRetries };

/**
 * Node system errors by errno code. Network faults are transient. Storage:
 * - ENOSPC is retried (up to 5 times, with backoff): the deletion stage frees buffer space, and if it
 *   does not, the operation fails and a human is told.
 * - EACCES/EPERM/EROFS are not: permissions and read-only mounts need a human.
 * - ENOENT is not: a source file that vanished does not come back by waiting.
 */
const SYSTEM_RULES: Readonly<Record<string, Rule>> = {
  ECONNRESET: rule(NetworkError, 'CONNECTION_RESET', true),
  ECONNREFUSED: rule(NetworkError, 'CONNECTION_REFUSED', true),
  ECONNABORTED: rule(NetworkError, 'CONNECTION_ABORTED', true),
  ETIMEDOUT: rule(NetworkError, 'TIMED_OUT', true),
  EPIPE: rule(NetworkError, 'BROKEN_PIPE', true),
  EAI_AGAIN: rule(NetworkError, 'DNS_TEMPORARY_FAILURE', true),
  EHOSTUNREACH: rule(NetworkError, 'HOST_UNREACHABLE', true),
  EHOSTDOWN: rule(NetworkError, 'HOST_UNREACHABLE', true),
  ENETUNREACH: rule(NetworkError, 'NETWORK_UNREACHABLE', true),
  ENETDOWN: rule(NetworkError, 'NETWORK_UNREACHABLE', true),
  ENOTFOUND: rule(NetworkError, 'HOST_NOT_FOUND', false),
  ERR_STREAM_PREMATURE_CLOSE: rule(NetworkError, 'STREAM_CLOSED', true),
  UND_ERR_SOCKET: rule(NetworkError, 'CONNECTION_RESET', true),
  UND_ERR_CONNECT_TIMEOUT: rule(NetworkError, 'TIMED_OUT', true),
  ENOSPC: rule(StorageError, 'STORAGE_FULL', true, 5),
  EDQUOT: rule(StorageError, 'STORAGE_FULL', true, 5),
  EACCES: rule(StorageError, 'PERMISSION_DENIED', false),
  EPERM: rule(StorageError, 'PERMISSION_DENIED', false),
  EROFS: rule(StorageError, 'READ_ONLY_STORAGE', false),
  ENOENT: rule(StorageError, 'FILE_NOT_FOUND', false),
  ENOTDIR: rule(StorageError, 'PATH_INVALID', false),
  EISDIR: rule(StorageError, 'PATH_INVALID', false),
  ENAMETOOLONG: rule(StorageError, 'PATH_INVALID', false),
  EEXIST: rule(DestinationFileExistsError, 'DESTINATION_EXISTS', false),
  ENOTEMPTY: rule(DestinationFileExistsError, 'DESTINATION_EXISTS', false),
  EMFILE: rule(StorageError, 'RESOURCE_EXHAUSTED', true),
  ENFILE: rule(StorageError, 'RESOURCE_EXHAUSTED', true),
  ENOMEM: rule(StorageError, 'RESOURCE_EXHAUSTED', true),
  EAGAIN: rule(StorageError, 'RESOURCE_EXHAUSTED', true),
  EBUSY: rule(StorageError, 'STORAGE_BUSY', true),
  ESTALE: rule(StorageError, 'STORAGE_STALE_HANDLE', true),
  EIO: rule(StorageError, 'STORAGE_IO_ERROR', true, 2),
  EXDEV: rule(StorageError, 'CROSS_DEVICE', false),
};

/** PostgreSQL errors by SQLSTATE: exact codes first, then the two-character class. */
const SQLSTATE_EXACT: Readonly<Record<string, Rule>> = {
  '40001': rule(DatabaseOperationError, 'DB_SERIALIZATION_FAILURE', true),
  '40P01': rule(DatabaseOperationError, 'DB_DEADLOCK', true),
  '57014': rule(DatabaseOperationError, 'DB_QUERY_CANCELED', true),
  '55P03': rule(DatabaseOperationError, 'DB_LOCK_NOT_AVAILABLE', true),
  '57P01': rule(DatabaseConnectionError, 'DB_SHUTDOWN', true),
  '57P02': rule(DatabaseConnectionError, 'DB_SHUTDOWN', true),
  '57P03': rule(DatabaseConnectionError, 'DB_SHUTDOWN', true),
  '23505': rule(DatabaseOperationError, 'DB_UNIQUE_VIOLATION', false),
  '3D000': rule(DatabaseOperationError, 'DB_CONFIGURATION', false),
  '3F000': rule(DatabaseOperationError, 'DB_CONFIGURATION', false),
  // A named prepared statement that the server connection already has (42P05) or does not have
  // (26000): behind a transaction-mode pooler (PgBouncer before 1.21) consecutive transactions
  // land on different server connections. A configuration problem, not the operation's: retried
  // (the pool stops preparing once it sees one), never a permanent failure of the operation.
  '42P05': rule(DatabaseOperationError, 'DB_PREPARED_STATEMENT_CONFLICT', true),
  '26000': rule(DatabaseOperationError, 'DB_PREPARED_STATEMENT_CONFLICT', true),
};
/**
 * A protocol violation (08P01) that is a refused startup parameter (PgBouncer: "unsupported
 * startup parameter: options") is configuration, which no reconnect cures, not a lost connection.
 */
const UNSUPPORTED_STARTUP_PARAMETER = /unsupported startup parameter/i;
const STARTUP_PARAMETER_RULE = rule(DatabaseOperationError, 'DB_CONFIGURATION', false);
const SQLSTATE_CLASS: Readonly<Record<string, Rule>> = {
  '08': rule(DatabaseConnectionError, 'DB_CONNECTION', true),
  '53': rule(DatabaseError, 'DB_INSUFFICIENT_RESOURCES', true),
  '58': rule(DatabaseError, 'DB_SYSTEM_ERROR', true, 2),
  '23': rule(DatabaseOperationError, 'DB_INTEGRITY_VIOLATION', false),
  '42': rule(DatabaseOperationError, 'DB_SYNTAX_OR_ACCESS', false),
  '22': rule(DatabaseOperationError, 'DB_DATA_EXCEPTION', false),
  '28': rule(DatabaseOperationError, 'DB_AUTH_FAILED', false),
  '25': rule(DatabaseOperationError, 'DB_INVALID_TRANSACTION_STATE', false),
  XX: rule(DatabaseOperationError, 'DB_INTERNAL_ERROR', false),
};
/** Any other SQLSTATE: retried once, like the unknown. */
const SQLSTATE_DEFAULT = rule(DatabaseError, 'DB_ERROR', true, 1);

/** Redis reply errors (ioredis `ReplyError`) by their first word: the transient ones. */
const REDIS_TRANSIENT_REPLIES = new Set([
  'LOADING',
  'BUSY',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'MASTERDOWN',
  'READONLY',
  'OOM',
]);

/** Messages of connection failures that arrive without a code (pg, pg-pool, ioredis). */
const PG_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Client has encountered a connection error and is not queryable',
  'Connection is not open',
];
const REDIS_CONNECTION_MESSAGES = [
  'Connection is closed',
  "Stream isn't writeable",
  'Reached the max retries per request limit',
  'None of startup nodes is available',
];

/** ioredis' rejection of a command that outlived its `commandTimeout` (a plain Error). */
const REDIS_COMMAND_TIMEOUT_MESSAGE = 'Command timed out';

const MAX_CAUSE_DEPTH = 5;

function make(
  r: Rule,
  message: string,
  cause: unknown,
  context: Record<string, unknown>,
): CCATDataOperationError {
  return new r.cls(message, {
    code: r.code,
    retryable: r.retryable,
    ...(r.maxRetries !== undefined && { maxRetries: r.maxRetries }),
    context,
    cause,
  });
}

function classifyErrorLike(e: object, depth: number): CCATDataOperationError | undefined {
  const name = safeString(e, 'name') ?? '';
  const message = truncate(safeString(e, 'message') ?? '', 64 * 1024);
  const rawCode = safeGet(e, 'code');
  const code = typeof rawCode === 'string' ? rawCode : undefined;

  if (name === 'AbortError' || code === 'ABORT_ERR') {
    return new OperationAbortedError(message || 'aborted', { cause: e });
  }
  if (name === 'TimeoutError') {
    return new OperationTimeoutError(message || 'timed out', { cause: e });
  }
  const issues = safeGet(e, 'issues');
  if (name === 'ZodError' && Array.isArray(issues)) {
    const list = issues.slice(0, 20).map((i) => ({
      path: toSafeJson(safeGet(i, 'path'), { maxDepth: 2 }),
      message: safeString(i, 'message') ?? '',
      code: safeString(i, 'code') ?? '',
    }));
    return new ValidationError(message, { context: { issues: list, issueCount: issues.length }, cause: e });
  }
  // PostgreSQL server errors carry a five-character SQLSTATE and a severity.
  if (
    code !== undefined &&
    /^[0-9A-Z]{5}$/.test(code) &&
    (safeGet(e, 'severity') !== undefined || name === 'DatabaseError')
  ) {
    const r =
      code === '08P01' && UNSUPPORTED_STARTUP_PARAMETER.test(message)
        ? STARTUP_PARAMETER_RULE
        : (SQLSTATE_EXACT[code] ?? SQLSTATE_CLASS[code.slice(0, 2)] ?? SQLSTATE_DEFAULT);
    const context: Record<string, unknown> = { sqlstate: code };
    for (const key of ['severity', 'table', 'column', 'constraint', 'routine'] as const) {
      const v = safeString(e, key);
      if (v !== undefined) context[key] = v;
    }
    const detail = safeString(e, 'detail');
    if (detail !== undefined) context['detail'] = truncate(detail, 500);
    return make(r, message, e, context);
  }
  // Node system errors (and undici's socket errors).
  if (code !== undefined && SYSTEM_RULES[code] !== undefined) {
    const context: Record<string, unknown> = { errno: code };
    for (const key of ['syscall', 'path', 'dest', 'address', 'hostname'] as const) {
      const v = safeString(e, key);
      if (v !== undefined) context[key] = v;
    }
    const port = safeGet(e, 'port');
    if (typeof port === 'number') context['port'] = port;
    return make(SYSTEM_RULES[code], message || code, e, context);
  }
  // ioredis.
  if (name === 'MaxRetriesPerRequestError' || name === 'ClusterAllFailedError') {
    return new RedisConnectionError(message, { cause: e });
  }
  if (name === 'ReplyError') {
    const word = message.split(/\s/, 1)[0] ?? '';
    const context = { reply: truncate(message, 500) };
    return REDIS_TRANSIENT_REPLIES.has(word)
      ? new RedisConnectionError(message, { code: `REDIS_${word}`, context, cause: e })
      : new RedisCommandError(message, { context, cause: e });
  }
  if (REDIS_CONNECTION_MESSAGES.some((m) => message.startsWith(m))) {
    return new RedisConnectionError(message, { cause: e });
  }
  // ioredis' `commandTimeout`: the server did not answer in time (hung, paused, unreachable).
  if (message === REDIS_COMMAND_TIMEOUT_MESSAGE) {
    return new RedisConnectionError(message, { code: 'REDIS_TIMEOUT', cause: e });
  }
  if (PG_CONNECTION_MESSAGES.some((m) => message.startsWith(m))) {
    return new DatabaseConnectionError(message, { cause: e });
  }
  // Wrappers: classify what they wrap (fetch's "fetch failed", AggregateError, Error with a cause).
  if (depth < MAX_CAUSE_DEPTH) {
    const errors = safeGet(e, 'errors');
    const inner: unknown =
      Array.isArray(errors) && errors.length > 0 ? (errors as unknown[])[0] : safeGet(e, 'cause');
    if (inner !== undefined && inner !== null && inner !== e) {
      const innerError = isCcatError(inner) ? inner : classifyAt(inner, depth + 1);
      if (innerError.code !== UnknownError.defaultCode) {
        const Cls = innerError.constructor as CcatErrorClass;
        return new Cls(message ? `${message}: ${innerError.message}` : innerError.message, {
          code: innerError.code,
          retryable: innerError.retryable,
          ...(innerError.maxRetries !== undefined && { maxRetries: innerError.maxRetries }),
          context: innerError.context,
          cause: e,
        });
      }
    }
  }
  // Bugs: retrying repeats them.
  if (
    e instanceof TypeError ||
    e instanceof RangeError ||
    e instanceof ReferenceError ||
    e instanceof SyntaxError ||
    (code !== undefined && /^ERR_(INVALID|OUT_OF_RANGE|MISSING)/.test(code))
  ) {
    return new InternalError(message, {
      context: { errorName: name, ...(code !== undefined && { errno: code }) },
      cause: e,
    });
  }
  return undefined;
}

function classifyAt(thrown: unknown, depth: number): CCATDataOperationError {
  if (isCcatError(thrown)) return thrown;
  if (typeof thrown === 'object' && thrown !== null) {
    const classified = classifyErrorLike(thrown, depth);
    if (classified) return classified;
    if (thrown instanceof Error) {
      return new UnknownError(truncate(safeString(thrown, 'message') ?? '', 64 * 1024) || 'unknown error', {
        context: { errorName: safeString(thrown, 'name') ?? 'Error' },
        cause: thrown,
      });
    }
  }
  // Not an Error at all: a string, undefined, a plain object. Keep a safe description, not the value.
  const kind = thrown === null ? 'null' : Array.isArray(thrown) ? 'array' : typeof thrown;
  const text = describe(thrown, 64 * 1024);
  return new UnknownError(`non-error thrown (${kind}): ${text}`, { context: { thrownType: kind } });
}

/**
 * What the classifier has a rule for, table by table: errno codes, exact SQLSTATEs, SQLSTATE classes
 * (their first two characters) and the first words of transient Redis replies. For references such
 * as the runbook: classify a probe made from a key to see the code, class and retryability it gets.
 */
export const CLASSIFIER_RULE_KEYS: {
  readonly errno: readonly string[];
  readonly sqlstate: readonly string[];
  readonly sqlstateClass: readonly string[];
  readonly redisReply: readonly string[];
} = {
  errno: Object.keys(SYSTEM_RULES),
  sqlstate: Object.keys(SQLSTATE_EXACT),
  sqlstateClass: Object.keys(SQLSTATE_CLASS),
  redisReply: [...REDIS_TRANSIENT_REPLIES],
};

/**
 * Maps anything thrown to a CCAT error. CCAT errors pass through unchanged; Node system errors,
 * PostgreSQL (by SQLSTATE), ioredis, zod and abort errors get their own class, code and
 * retryability, with the original as `cause`; wrappers are classified by what they wrap. Anything
 * else becomes `UnknownError` (retryable once). Never throws, whatever it is given.
 */
export function classifyError(thrown: unknown): CCATDataOperationError {
  try {
    return classifyAt(thrown, 0);
  } catch (failure) {
    // Only a pathological object reaches here (every read above is guarded); say so and move on.
    return new UnknownError('unclassifiable value thrown', {
      context: { classifierFailure: describe(failure) },
    });
  }
}

/** Whether running the operation again may help, for anything thrown. */
export function isRetryable(thrown: unknown): boolean {
  return classifyError(thrown).retryable;
}
