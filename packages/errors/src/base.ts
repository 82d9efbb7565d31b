import { serializeError, type SerializedError } from './serialize.js';

/** Options every CCAT error takes; anything left out comes from the class's defaults. */
export interface CcatErrorOptions {
  /** Stable machine-readable reason, e.g. `CHECKSUM_MISMATCH`. Defaults to the class's code. */
  readonly code?: string;
  /** Whether running the operation again may succeed. Defaults to the class's retryability. */
  readonly retryable?: boolean;
  /** This error's own retry limit; wins over the operation type's and the global default. */
  readonly maxRetries?: number;
  /** Operation-specific facts (paths, ids, exit codes). Must be JSON-like; it is cut when serialized. */
  readonly context?: Readonly<Record<string, unknown>>;
  /** The error this one explains; kept as the native `cause`. */
  readonly cause?: unknown;
}

/**
 * Base of every error the CCAT pipeline raises on purpose. It carries a reason (`code`), whether a
 * retry may help (`retryable`), an optional retry limit and context, and the native `cause`.
 * Subclasses set their defaults with static fields.
 */
export class CCATDataOperationError extends Error {
  static readonly defaultCode: string = 'DATA_OPERATION_ERROR';
  static readonly defaultRetryable: boolean = true;
  static readonly defaultMaxRetries: number | undefined = undefined;

  readonly code: string;
  readonly retryable: boolean;
  readonly maxRetries: number | undefined;
  readonly context: Readonly<Record<string, unknown>>;

  constructor(message: string, options: CcatErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const defaults = new.target;
    this.name = defaults.name;
    this.code = options.code ?? defaults.defaultCode;
    this.retryable = options.retryable ?? defaults.defaultRetryable;
    this.maxRetries = options.maxRetries ?? defaults.defaultMaxRetries;
    this.context = Object.freeze({ ...options.context });
  }

  /** JSON form, safe for circular contexts and huge messages (see `serializeError`). */
  toJSON(): SerializedError {
    return serializeError(this);
  }
}

/** A constructor of CCAT errors, as the deserializer and other services' registries take them. */
export type CcatErrorClass = (new (message: string, options?: CcatErrorOptions) => CCATDataOperationError) & {
  readonly defaultCode: string;
  readonly defaultRetryable: boolean;
  readonly defaultMaxRetries: number | undefined;
};

/** True for CCAT errors, also across copies of this package (checks the shape, not only the prototype). */
export function isCcatError(value: unknown): value is CCATDataOperationError {
  if (value instanceof CCATDataOperationError) return true;
  if (!(value instanceof Error)) return false;
  try {
    const v = value as unknown as Record<string, unknown>;
    return (
      typeof v['code'] === 'string' && typeof v['retryable'] === 'boolean' && typeof v['context'] === 'object'
    );
  } catch {
    return false;
  }
}
