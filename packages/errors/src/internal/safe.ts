// Reading values we do not trust: getters that throw, Proxies, hostile toString, cycles, megabytes.

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Reads a property; a throwing getter or Proxy trap gives undefined instead of an exception. */
export function safeGet(value: unknown, key: string): unknown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return undefined;
  try {
    return (value as Record<string, unknown>)[key];
  } catch {
    return undefined;
  }
}

/** A property that is a string, else undefined. */
export function safeString(value: unknown, key: string): string | undefined {
  const v = safeGet(value, key);
  return typeof v === 'string' ? v : undefined;
}

/**
 * Cuts a string to `max` UTF-16 code units (plus the marker), saying how much was cut. Never
 * splits a surrogate pair, so a cut emoji does not leave half a character behind.
 */
export function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  let keep = Math.max(0, Math.floor(max));
  const last = text.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return `${text.slice(0, keep)}…[truncated ${text.length - keep} chars]`;
}

/** A one-line description of anything, never throwing and never calling a hostile toString. */
export function describe(value: unknown, max = 2000): string {
  switch (typeof value) {
    case 'string':
      return truncate(value, max);
    case 'undefined':
      return 'undefined';
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    case 'symbol':
      try {
        return value.toString();
      } catch {
        return 'Symbol()';
      }
    case 'function':
      return `[function ${safeString(value, 'name') ?? 'anonymous'}]`;
    case 'object': {
      if (value === null) return 'null';
      const message = safeString(value, 'message');
      if (message !== undefined) return truncate(message, max);
      try {
        return truncate(JSON.stringify(toSafeJson(value, { maxDepth: 3 })), max);
      } catch {
        return Object.prototype.toString.call(value);
      }
    }
  }
}

export interface SafeJsonLimits {
  readonly maxDepth?: number;
  readonly maxString?: number;
  readonly maxArray?: number;
  readonly maxKeys?: number;
  /** Most values walked in all (default 10 000): bounds the cost of any shape, shared references included. */
  readonly maxNodes?: number;
  /** Longest key kept, in characters (default 256): a longer one is cut with a marker. */
  readonly maxKeyLength?: number;
}

/**
 * A JSON-safe copy: cycles become "[Circular]", an object met again elsewhere (a shared, not
 * circular, reference) becomes "[Repeated]" (so a DAG costs its size, not its number of paths),
 * depth, string length, key length, array length, key count and the total number of values
 * walked are cut with a marker, bigints become strings, functions and symbols are dropped, errors
 * become `{ name, message, code }`. Never throws; the work is bounded by the limits whatever the input.
 */
export function toSafeJson(value: unknown, limits: SafeJsonLimits = {}): JsonValue {
  const maxDepth = limits.maxDepth ?? 8;
  const maxString = limits.maxString ?? 4096;
  const maxArray = limits.maxArray ?? 100;
  const maxKeys = limits.maxKeys ?? 100;
  const maxNodes = limits.maxNodes ?? 10_000;
  const maxKeyLength = limits.maxKeyLength ?? 256;
  // Objects on the path from the root (a cycle), and every object shown so far (a repeat).
  const ancestors = new WeakSet<object>();
  const shown = new WeakSet<object>();
  let nodes = 0;

  const walk = (v: unknown, depth: number): JsonValue | undefined => {
    if (++nodes > maxNodes) return '[Truncated: too many values]';
    switch (typeof v) {
      case 'string':
        return truncate(v, maxString);
      case 'number':
        return Number.isFinite(v) ? v : String(v);
      case 'boolean':
        return v;
      case 'bigint':
        return v.toString();
      case 'undefined':
      case 'function':
      case 'symbol':
        return undefined;
      case 'object':
        break;
    }
    if (v === null) return null;
    const obj = v;
    if (ancestors.has(obj)) return '[Circular]';
    if (shown.has(obj)) return '[Repeated]';
    if (depth >= maxDepth) return '[Truncated: too deep]';
    try {
      if (obj instanceof Date) return Number.isNaN(obj.getTime()) ? 'Invalid Date' : obj.toISOString();
      if (ArrayBuffer.isView(obj)) return `[${obj.constructor.name} ${obj.byteLength} bytes]`;
      ancestors.add(obj);
      shown.add(obj);
      try {
        if (obj instanceof Error) {
          const out: Record<string, JsonValue> = { name: safeString(obj, 'name') ?? 'Error' };
          out['message'] = truncate(safeString(obj, 'message') ?? '', maxString);
          const code = safeGet(obj, 'code');
          if (typeof code === 'string' || typeof code === 'number') out['code'] = code;
          return out;
        }
        if (Array.isArray(obj)) {
          const items = obj.slice(0, maxArray).map((x) => walk(x, depth + 1) ?? null);
          if (obj.length > maxArray) items.push(`…[truncated ${obj.length - maxArray} items]`);
          return items;
        }
        // Values are read only for the keys kept: a 200 000-key object costs its key list, not 200 000 reads.
        const entries: [string, () => unknown][] =
          obj instanceof Map
            ? [...(obj as Map<unknown, unknown>).entries()].map(([k, x]) => [
                describe(k, maxKeyLength),
                () => x,
              ])
            : obj instanceof Set
              ? [...(obj as Set<unknown>).values()].map((x, i) => [String(i), () => x])
              : Object.keys(obj).map((k) => [k, () => safeGet(obj, k)]);
        const out: Record<string, JsonValue> = {};
        let n = 0;
        for (const [k, read] of entries) {
          if (n === maxKeys) {
            out['…'] = `[truncated ${entries.length - maxKeys} keys]`;
            break;
          }
          const j = walk(read(), depth + 1);
          if (j !== undefined) {
            out[truncate(k, maxKeyLength)] = j;
            n++;
          }
        }
        return out;
      } finally {
        ancestors.delete(obj);
      }
    } catch {
      return '[Unreadable]';
    }
  };
  return walk(value, 0) ?? null;
}
