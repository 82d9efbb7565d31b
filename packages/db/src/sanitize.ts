// Text safe at the database boundary. Two layers, one module:
//
// 1. Every parameter of every statement a `createDatabase` handle sends is made encodable
//    (`storablePool`, between Kysely and the pg pool): PostgreSQL refuses a NUL character in text ("invalid byte sequence for
//    encoding UTF8: 0x00") and a NUL or an unpaired surrogate in JSON ("unsupported Unicode escape
//    sequence"), and node-postgres sends an unpaired UTF-16 surrogate as U+FFFD bytes anyway. A
//    refused statement is a failure that cannot be recorded and a recovery that cannot happen, so
//    the wrapper replaces them with U+FFFD in every string, array and JSON parameter, and the
//    same characters as JSON escapes in JSON documents only (never in plain text, where a
//    backslash and `u0000` are a legal file name). It wraps the pool itself, not Kysely's query tree, because
//    pre-compiled statements (the TransitionBatcher's `CompiledQuery.raw` over unnest arrays)
//    bypass Kysely plugins; so no writer, present or future, can go around it. Reads are
//    unaffected in meaning: no stored value can hold what it replaces.
// 2. Free text that a writer stores (error messages, event messages and context, notification
//    subject, body and context, delivery errors) goes through `storedText` / `storedJson`: the one
//    redactor of @ccat/errors, then a length bound with a marker. This is per column, not in the
//    wrapper, because identifiers and lookup keys (ids, names, paths, worker ids) must be stored and
//    compared exactly as given.
import {
  redactSecrets,
  redactValue,
  storableJsonText,
  storableText,
  ValidationError,
  type SafeJsonLimits,
} from '@ccat/errors';
import type { PostgresCursor, PostgresPool, PostgresPoolClient } from 'kysely';

/** Whether a text parameter is a JSON document (an object or an array): it is bound for a json/jsonb column. */
function isJsonDocument(text: string): boolean {
  if (!/^\s*[[{]/.test(text) || !/[\]}]\s*$/.test(text)) return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * A statement parameter made storable. Strings by `storableText` (NUL and unpaired surrogates;
 * nothing else, so identifiers, names and paths are stored exactly as given), and by
 * `storableJsonText` too when the string is a JSON document (an object or an array: what the
 * writers bind to json/jsonb columns) holding an escape PostgreSQL refuses; arrays (unnest
 * columns) and plain objects (node-postgres sends them as JSON) walked to their strings, keys
 * included. Anything else (numbers, dates, buffers, null) is returned as is. Returns the same
 * reference when nothing changed.
 */
export function storableParameter(value: unknown): unknown {
  if (typeof value === 'string') {
    const text = storableText(value);
    if (!text.includes('\\u')) return text;
    const json = storableJsonText(text);
    return json !== text && isJsonDocument(text) ? json : text;
  }
  if (Array.isArray(value)) {
    let changed = false;
    const out = value.map((v) => {
      const s = storableParameter(v);
      if (s !== v) changed = true;
      return s;
    });
    return changed ? out : value;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    // Sent as JSON.stringify's text: raw strings made storable give storable JSON.
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const key = storableText(k);
      const s = storableParameter(v);
      if (key !== k || s !== v) changed = true;
      out[key] = s;
    }
    return changed ? out : value;
  }
  return value;
}

/**
 * The pool with every statement's parameters made storable (`storableParameter`) before they
 * reach the server: no text or JSON value can make a statement fail for its encoding. Only
 * `query(text, parameters)` is touched; cursors and `release` pass through. `createDatabase`
 * wraps every pool it uses (its own and a caller's); ending the wrapper ends the pool it wraps.
 */
export function storablePool(pool: PostgresPool): PostgresPool {
  return {
    async connect(): Promise<PostgresPoolClient> {
      const client = await pool.connect();
      const query = ((text: unknown, parameters?: readonly unknown[]) =>
        typeof text === 'string' && Array.isArray(parameters)
          ? client.query(text, storableParameter(parameters) as readonly unknown[])
          : client.query(text as PostgresCursor<unknown>)) as PostgresPoolClient['query'];
      return { query, release: (destroy?: boolean) => client.release(destroy) };
    },
    end: () => pool.end(),
  };
}

/**
 * Free text as it is stored: secrets redacted (the one redactor of @ccat/errors), cut to
 * `maxLength` characters plus a `…[truncated N chars]` marker (redaction happens before the cut,
 * so a cut never leaves half a secret), and made storable. For error messages, event messages,
 * notification subjects and bodies, delivery errors.
 */
export function storedText(text: string, maxLength: number): string {
  return storableText(redactSecrets(text, maxLength));
}

/** `storedText` for a column that may be NULL. */
export function storedTextOrNull(text: string | null | undefined, maxLength: number): string | null {
  return text === undefined || text === null ? null : storedText(text, maxLength);
}

/** The bound on a stored JSON document, in characters of its text. */
export const MAX_JSON_TEXT = 65_536;

const TIGHT: SafeJsonLimits = { maxDepth: 4, maxString: 512, maxArray: 20, maxKeys: 30 };

/**
 * A JSON column's text: a JSON-safe copy (cycles, depth, huge strings, hostile getters handled by
 * `toSafeJson`), secret-named keys blanked and every string redacted (`redactValue`), made
 * storable, and at most `maxLength` characters: a larger document is copied again with tight
 * limits, and if even that is too large it is stored as `{"…": "[truncated: N chars of JSON]"}`.
 * `undefined` and `null` become `{}`.
 */
export function storedJson(value: unknown, maxLength: number = MAX_JSON_TEXT): string {
  const input = value ?? {};
  let text = JSON.stringify(redactValue(input));
  if (text.length > maxLength) {
    const full = text.length;
    text = JSON.stringify(redactValue(input, TIGHT));
    if (text.length > maxLength) text = JSON.stringify({ '…': `[truncated: ${full} chars of JSON]` });
  }
  return storableJsonText(text);
}

/** Longest file-name segment, in UTF-8 bytes (POSIX NAME_MAX on Linux filesystems: ext4, xfs, zfs). */
export const NAME_MAX_BYTES = 255;
/** Longest path, in UTF-8 bytes, terminating NUL excluded (Linux PATH_MAX is 4096 with it). */
export const PATH_MAX_BYTES = 4095;

const utf8Bytes = (text: string): number => Buffer.byteLength(text, 'utf8');

/**
 * Checks a name stored in an identifier column (a package, site or location name: UNIQUE, indexed,
 * often a file name too) before it is written: non-empty, no NUL, at most NAME_MAX_BYTES UTF-8
 * bytes. A longer name cannot name a real file, and would otherwise reach PostgreSQL and fail the
 * btree index ("index row size exceeds maximum", 54000) after work was done. Throws
 * ValidationError naming the field and the sizes, never the (possibly huge) value; returns the name.
 */
export function checkStoredName(name: string, field: string): string {
  if (name.length === 0) throw new ValidationError(`${field} is empty`, { context: { field } });
  if (name.includes('\u0000'))
    throw new ValidationError(`${field} contains a NUL character`, { context: { field } });
  const bytes = utf8Bytes(name);
  if (bytes > NAME_MAX_BYTES)
    throw new ValidationError(
      `${field} is ${bytes} bytes long: a name has at most ${NAME_MAX_BYTES} (NAME_MAX)`,
      {
        context: { field, bytes, max: NAME_MAX_BYTES },
      },
    );
  return name;
}

/**
 * Checks a path stored in an identifier column (a file's relative path, a location's root) before
 * it is written: non-empty, no NUL, at most PATH_MAX_BYTES UTF-8 bytes in all and NAME_MAX_BYTES
 * per `/`-separated segment (what the filesystem allows, so nothing longer is a real file).
 * Throws ValidationError naming the field and the sizes, never the value; returns the path.
 */
export function checkStoredPath(path: string, field: string): string {
  if (path.length === 0) throw new ValidationError(`${field} is empty`, { context: { field } });
  if (path.includes('\u0000'))
    throw new ValidationError(`${field} contains a NUL character`, { context: { field } });
  const bytes = utf8Bytes(path);
  if (bytes > PATH_MAX_BYTES)
    throw new ValidationError(
      `${field} is ${bytes} bytes long: a path has at most ${PATH_MAX_BYTES} (PATH_MAX)`,
      {
        context: { field, bytes, max: PATH_MAX_BYTES },
      },
    );
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i]!;
    const n = utf8Bytes(segment);
    if (n > NAME_MAX_BYTES)
      throw new ValidationError(
        `${field} has a segment of ${n} bytes (segment ${i + 1}): a file name has at most ${NAME_MAX_BYTES} (NAME_MAX)`,
        { context: { field, segment: i + 1, bytes: n, max: NAME_MAX_BYTES } },
      );
  }
  return path;
}
