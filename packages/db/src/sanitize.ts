// Text safe at the database boundary. Two layers, one module:
//
// 1. Every parameter of every statement a `createDatabase` handle sends is made encodable
//    (`storablePool`, between Kysely and the pg pool): PostgreSQL refuses a NUL character in text ("invalid byte sequence for
//    encoding UTF8: 0x00") and a NUL or an unpaired surrogate in JSON ("unsupported Unicode escape
//    sequence"), and node-postgres sends an unpaired UTF-16 surrogate as U+FFFD bytes anyway. A
//    refused statement is a failure that cannot be recorded and a recovery that cannot happen, so
//    the wrapper replaces them with U+FFFD in every string, array and JSON parameter, including
//    JSON escapes inside JSON text. It wraps the pool itself, not Kysely's query tree, because
//    pre-compiled statements (the TransitionBatcher's `CompiledQuery.raw` over unnest arrays)
//    bypass Kysely plugins; so no writer, present or future, can go around it. Reads are
//    unaffected in meaning: no stored value can hold what it replaces.
// 2. Free text that a writer stores (error messages, event messages and context, notification
//    subject, body and context, delivery errors) goes through `storedText` / `storedJson`: the one
//    redactor of @ccat/errors, then a length bound with a marker. This is per column, not in the
//    wrapper, because identifiers and lookup keys (ids, names, paths, worker ids) must be stored and
//    compared exactly as given.
import { redactSecrets, redactValue, type SafeJsonLimits } from '@ccat/errors';
import type { PostgresCursor, PostgresPool, PostgresPoolClient } from 'kysely';

/** What replaces a character PostgreSQL cannot store (U+FFFD REPLACEMENT CHARACTER). */
export const REPLACEMENT_CHARACTER = '\ufffd';

// NUL, and UTF-16 surrogates without their other half (code units: no `u` flag on purpose).
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// The same as JSON escapes: \u0000, and \uD8xx–\uDBxx / \uDCxx–\uDFxx escapes without their pair.
const UNSTORABLE_ESCAPE =
  /\\u0000|\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}/g;

/**
 * `text` with every NUL and every unpaired UTF-16 surrogate replaced by U+FFFD, and the same
 * characters written as JSON escapes (`\u0000`, a lone `\ud800`) replaced by `\ufffd`, so the text
 * is storable in a `text` column and, when it is JSON, in a `jsonb` column. Returns `text` itself
 * when nothing needed replacing (the common case costs two scans, no copy).
 */
export function storableText(text: string): string {
  let out = text;
  UNSTORABLE.lastIndex = 0;
  if (UNSTORABLE.test(out)) out = out.replace(UNSTORABLE, REPLACEMENT_CHARACTER);
  if (out.includes('\\u')) out = out.replace(UNSTORABLE_ESCAPE, '\\ufffd');
  return out;
}

/**
 * A statement parameter made storable: strings by `storableText`, arrays (unnest columns) and
 * plain objects (node-postgres sends them as JSON) walked to their strings, keys included.
 * Anything else (numbers, dates, buffers, null) is returned as is. Returns the same reference
 * when nothing changed.
 */
export function storableParameter(value: unknown): unknown {
  if (typeof value === 'string') return storableText(value);
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
  return storableText(text);
}
