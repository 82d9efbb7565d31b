// The CCAT-named hierarchy. Each class fixes a default code and retryability; callers may override
// both per throw (a PackageError caused by a full disk is not the same as one caused by a bad file).
import { CCATDataOperationError } from './base.js';

/** Anything worth another try. */
export class RetryableError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'RETRYABLE_ERROR';
}
/** Anything a retry cannot fix: a human has to look. */
export class NonRetryableError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'NON_RETRYABLE_ERROR';
  static override readonly defaultRetryable: boolean = false;
}
/** Known to be final. */
export class PermanentError extends NonRetryableError {
  static override readonly defaultCode: string = 'PERMANENT_ERROR';
}
/** Configuration is wrong; no retry helps until someone changes it. */
export class ConfigurationError extends NonRetryableError {
  static override readonly defaultCode: string = 'CONFIGURATION_ERROR';
}
/** Input (a job payload, an argument, a config value) failed validation. */
export class ValidationError extends NonRetryableError {
  static override readonly defaultCode: string = 'VALIDATION_FAILED';
}
/** An operation type that no table and no handler knows. */
export class UnknownOperationTypeError extends ValidationError {
  static override readonly defaultCode: string = 'UNKNOWN_OPERATION_TYPE';
}
/** An operation id that is not a positive 64-bit integer. */
export class InvalidOperationIdError extends ValidationError {
  static override readonly defaultCode: string = 'INVALID_OPERATION_ID';
}
/** A bug in our code (TypeError, RangeError, Node's ERR_INVALID_ARG_*): retrying repeats it. */
export class InternalError extends NonRetryableError {
  static override readonly defaultCode: string = 'INTERNAL_ERROR';
}

/** Creating a raw data package or a transfer package failed. */
export class PackageError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'PACKAGE_ERROR';
}
/** Moving data between sites failed. */
export class DataTransferError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'TRANSFER_ERROR';
}
/** The bbcp/rsync-style transfer command failed; `context.exitCode` and `context.stderr` say how. */
export class BBCPError extends DataTransferError {
  static override readonly defaultCode: string = 'BBCP_ERROR';
}
/** A network peer did not answer, reset, or timed out. */
export class NetworkError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'NETWORK_ERROR';
}
/** Reading or writing a data location failed. */
export class StorageError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'STORAGE_ERROR';
}
/** A service we depend on is down or overloaded. */
export class ServiceUnavailableError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'SERVICE_UNAVAILABLE';
}
/** Redis refused or lost the connection. */
export class RedisConnectionError extends ServiceUnavailableError {
  static override readonly defaultCode: string = 'REDIS_UNAVAILABLE';
}
/** Redis answered a command with an error that a retry will not change (WRONGTYPE, NOSCRIPT...). */
export class RedisCommandError extends NonRetryableError {
  static override readonly defaultCode: string = 'REDIS_COMMAND_FAILED';
}
/** Data is not what it should be. */
export class DataCorruptionError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'DATA_CORRUPTION';
  static override readonly defaultRetryable: boolean = false;
}
/**
 * A checksum did not match. Retryable twice by default: a copy damaged in flight is fixed by
 * copying again; a source that is itself damaged fails after that and a human is told.
 */
export class ChecksumVerificationError extends DataCorruptionError {
  static override readonly defaultCode: string = 'CHECKSUM_MISMATCH';
  static override readonly defaultRetryable: boolean = true;
  static override readonly defaultMaxRetries: number | undefined = 2;
}
/** An archive cannot be read back (truncated tar, bad header). */
export class ArchiveCorruptionError extends DataCorruptionError {
  static override readonly defaultCode: string = 'ARCHIVE_CORRUPT';
}
/** Unpacking at the destination failed. */
export class UnpackError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'UNPACK_FAILED';
}
/** The destination already holds a different file under the same name; refusing to overwrite it. */
export class DestinationFileExistsError extends NonRetryableError {
  static override readonly defaultCode: string = 'DESTINATION_EXISTS';
}
/** Copying to the long-term archive failed. */
export class ArchiveError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'ARCHIVE_FAILED';
}
/** Deleting a source copy failed. */
export class DeletionError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'DELETION_FAILED';
}
/** Deletion refused: no archived, verified copy exists, or what is on disk is not exactly the package. Never retried into a deletion. */
export class DeletionNotSafeError extends DeletionError {
  static override readonly defaultCode: string = 'DELETION_NOT_SAFE';
  static override readonly defaultRetryable: boolean = false;
}
/** PostgreSQL failed. */
export class DatabaseError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'DATABASE_ERROR';
}
/** PostgreSQL is unreachable or dropped the connection. */
export class DatabaseConnectionError extends DatabaseError {
  static override readonly defaultCode: string = 'DB_CONNECTION';
}
/** A statement failed for a reason in the statement or the data (constraint, syntax, permission). */
export class DatabaseOperationError extends DatabaseError {
  static override readonly defaultCode: string = 'DB_OPERATION_FAILED';
  static override readonly defaultRetryable: boolean = false;
}
/** The work was cancelled through its AbortSignal (shutdown, lease lost). */
export class OperationAbortedError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'ABORTED';
}
/** The work took longer than allowed. */
export class OperationTimeoutError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'TIMEOUT';
}
/** A fenced write changed no row: this worker's attempt is no longer the current one. */
export class LeaseLostError extends NonRetryableError {
  static override readonly defaultCode: string = 'LEASE_LOST';
}
/** The operation stalled more often than its retry limit allows. */
export class StalledTooOftenError extends NonRetryableError {
  static override readonly defaultCode: string = 'STALLED_TOO_OFTEN';
}
/**
 * The operation's worker process died or froze every time it ran alone in it, more often than its
 * retry limit allows: the operation itself takes its process down (issue 13.4).
 */
export class PoisonOperationError extends NonRetryableError {
  static override readonly defaultCode: string = 'POISON_OPERATION';
}
/**
 * What nobody recognised. Retried once, then a human is told: a transient fault gets a second
 * chance, a deterministic bug does not burn through the whole retry budget.
 */
export class UnknownError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'UNKNOWN_ERROR';
  static override readonly defaultMaxRetries: number | undefined = 1;
}

/** Every class above, for the deserializer. */
export const builtinErrorClasses = [
  CCATDataOperationError,
  RetryableError,
  NonRetryableError,
  PermanentError,
  ConfigurationError,
  ValidationError,
  UnknownOperationTypeError,
  InvalidOperationIdError,
  InternalError,
  PackageError,
  DataTransferError,
  BBCPError,
  NetworkError,
  StorageError,
  ServiceUnavailableError,
  RedisConnectionError,
  RedisCommandError,
  DataCorruptionError,
  ChecksumVerificationError,
  ArchiveCorruptionError,
  UnpackError,
  DestinationFileExistsError,
  ArchiveError,
  DeletionError,
  DeletionNotSafeError,
  DatabaseError,
  DatabaseConnectionError,
  DatabaseOperationError,
  OperationAbortedError,
  OperationTimeoutError,
  LeaseLostError,
  StalledTooOftenError,
  PoisonOperationError,
  UnknownError,
] as const;
