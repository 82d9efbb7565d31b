// Errors to JSON. Works on anything thrown (duck-typed: no class imports, so base.ts can use it).
import { describe, safeGet, safeString, toSafeJson, truncate, type JsonValue } from './internal/safe.js';

/** The JSON form of an error and its cause chain. */
export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** Present for CCAT errors, and for third-party errors that carry a code (ECONNRESET, 40P01...). */
  readonly code?: string;
  /** Present for CCAT errors only. */
  readonly retryable?: boolean;
  readonly maxRetries?: number;
  readonly context?: Readonly<Record<string, JsonValue>>;
  readonly stack?: string;
  readonly cause?: SerializedError;
}

export interface SerializeOptions {
  /** Longest message kept, in characters (default 64 KiB); the rest is cut with a marker. */
  readonly maxMessageLength?: number;
  /** Largest context kept, in JSON characters (default 16 KiB); a larger one is replaced by a preview. */
  readonly maxContextLength?: number;
  /** How many causes deep to follow (default 8). */
  readonly maxCauseDepth?: number;
  /** Keep stack traces (default true). */
  readonly includeStack?: boolean;
}

function serializeContext(raw: unknown, maxLength: number): Record<string, JsonValue> {
  const json = toSafeJson(raw);
  const obj: Record<string, JsonValue> =
    json !== null && typeof json === 'object' && !Array.isArray(json) ? json : { value: json };
  const text = JSON.stringify(obj);
  if (text.length <= maxLength) return obj;
  return {
    _truncated: `context of ${text.length} chars cut to ${maxLength}`,
    _preview: truncate(text, maxLength),
  };
}

/** JSON-safe form of anything thrown: never throws, cuts what is too long, stops at cycles. */
export function serializeError(error: unknown, options: SerializeOptions = {}): SerializedError {
  const maxMessage = options.maxMessageLength ?? 64 * 1024;
  const maxContext = options.maxContextLength ?? 16 * 1024;
  const maxDepth = options.maxCauseDepth ?? 8;
  const includeStack = options.includeStack ?? true;
  const seen = new Set<unknown>();

  const one = (e: unknown, depth: number): SerializedError => {
    seen.add(e);
    if (
      !(e instanceof Error) &&
      (typeof e !== 'object' || e === null || safeString(e, 'message') === undefined)
    ) {
      return { name: 'NonError', message: describe(e, maxMessage) };
    }
    const name = safeString(e, 'name') ?? 'Error';
    const message = truncate(safeString(e, 'message') ?? '', maxMessage);
    const out: {
      -readonly [K in keyof SerializedError]: SerializedError[K];
    } = { name, message };
    const code = safeGet(e, 'code');
    if (typeof code === 'string') out.code = code;
    else if (typeof code === 'number') out.code = String(code);
    const retryable = safeGet(e, 'retryable');
    if (typeof retryable === 'boolean') out.retryable = retryable;
    const maxRetries = safeGet(e, 'maxRetries');
    if (typeof maxRetries === 'number' && Number.isInteger(maxRetries)) out.maxRetries = maxRetries;
    const context = safeGet(e, 'context');
    if (context !== undefined && context !== null) out.context = serializeContext(context, maxContext);
    if (includeStack) {
      const stack = safeString(e, 'stack');
      if (stack !== undefined) out.stack = truncate(stack, 16 * 1024);
    }
    const cause = safeGet(e, 'cause');
    if (cause !== undefined) {
      if (seen.has(cause)) out.cause = { name: 'CircularCause', message: '[Circular]' };
      else if (depth + 1 >= maxDepth) out.cause = { name: 'TruncatedCause', message: '[cause chain cut]' };
      else out.cause = one(cause, depth + 1);
    }
    return out;
  };
  return one(error, 0);
}
