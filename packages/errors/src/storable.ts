// Text a store can hold: NUL and unpaired UTF-16 surrogates (raw, and as JSON escapes in JSON text)
// replaced by U+FFFD. PostgreSQL refuses them in text and json columns, and log stores mangle them;
// @ccat/db applies this to every statement parameter, @ccat/service to every log line. Pure.

/** What replaces a character a store cannot hold (U+FFFD REPLACEMENT CHARACTER). */
export const REPLACEMENT_CHARACTER = '\ufffd';

// NUL, and UTF-16 surrogates without their other half (code units: no `u` flag on purpose).
// eslint-disable-next-line no-control-regex
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
// The escapes of JSON text, one token at a time (so `\\` is one escaped backslash and the `u0000`
// after it is plain text): a high-surrogate escape with its low half, any other \u escape, any
// other escape.
const JSON_ESCAPE =
  /\\u([dD][89abAB][0-9a-fA-F]{2})(\\u[dD][c-fC-F][0-9a-fA-F]{2})?|\\u([0-9a-fA-F]{4})|\\[\s\S]/g;

/**
 * Plain text made storable in a `text` column: every NUL and every unpaired UTF-16 surrogate
 * replaced by U+FFFD, and nothing else changed: a backslash followed by `u0000` is text like any
 * other (a legal file name), not an escape. Returns `text` itself when nothing needed replacing.
 */
export function storableText(text: string): string {
  UNSTORABLE.lastIndex = 0;
  return UNSTORABLE.test(text) ? text.replace(UNSTORABLE, REPLACEMENT_CHARACTER) : text;
}

/**
 * JSON text made storable in a `json`/`jsonb` column: `storableText`, and the JSON escapes
 * PostgreSQL refuses (`\u0000`, a `\ud800`–`\udfff` escape without its pair) replaced by
 * `\ufffd`. Escapes are read as JSON reads them, token by token: an escaped backslash followed by
 * `u0000` is the text `\u0000` and stays as it is. Only for JSON text; never for plain text.
 */
export function storableJsonText(json: string): string {
  const out = storableText(json);
  if (!out.includes('\\u')) return out;
  JSON_ESCAPE.lastIndex = 0;
  return out.replace(JSON_ESCAPE, (token: string, high?: string, low?: string, other?: string) => {
    if (high !== undefined) return low === undefined ? '\\ufffd' : token;
    if (other !== undefined) {
      const code = parseInt(other, 16);
      return code === 0 || (code >= 0xd800 && code <= 0xdfff) ? '\\ufffd' : token;
    }
    return token;
  });
}
