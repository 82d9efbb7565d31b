// The one redactor. Secrets never leave the process or reach storage: error messages quote
// connection strings, command lines, HTTP headers and configuration, so every sink (log lines,
// database text and JSON columns, CLI output, alerts, configuration errors) passes its text
// through these patterns and shows one censor string in place of a secret.
import { toSafeJson, type JsonValue, type SafeJsonLimits } from './internal/safe.js';

/** What every sink shows in place of a secret. */
export const REDACTED = '[REDACTED]';

// Keys (JSON keys, key=value names, flag names) that name a secret. Matched inside longer names:
// `smtpPassword`, `DB_PASSWORD`, `csrf_token`, `aws_secret_access_key`.
const SECRET_WORD =
  'passw(?:or)?d|passphrase|pwd|pass|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|credentials?|auth[_-]?key';

/**
 * The built-in patterns, one for each common form of a credential. A pattern with named groups
 * `pre`/`secret`/`post` keeps `pre` and `post` and replaces only `secret` (so `postgres://u:pw@h`
 * becomes `postgres://u:[REDACTED]@h`); `pre`/`bare` replaces a bare JSON value with the quoted
 * censor; without groups the whole match is replaced. Secret character classes never take `"` or
 * whitespace, and take a backslash only with the character it escapes, so redacting JSON text
 * keeps it valid JSON. Every repetition is bounded, so no input makes a pattern backtrack without
 * end (a sink cuts very long texts before redacting them, see `redactSecrets`).
 */
export const DEFAULT_SECRET_PATTERNS: readonly RegExp[] = [
  // PEM private keys first: their bodies contain nothing the other patterns would make safe. An
  // unterminated block (a cut message) is redacted to the end.
  /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY( BLOCK)?-----|$)/g,
  // URL userinfo of any scheme: scheme://user:password@host. The password may hold `#`, `/`, `@`
  // or `:` (unencoded, as people type them), so it runs greedily to the LAST `@` before the host.
  /(?<pre>\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/?#@"'<>]{0,256}:)(?<secret>[^\s"<>]{1,1024})(?<post>@[^\s@/"'<>\\]{0,256})/gi,
  // Slack incoming-webhook URLs: the path is the credential.
  /(?<pre>\bhooks\.slack\.com\/(?:services|workflows|triggers)\/)(?<secret>[A-Za-z0-9/_-]{1,256})/g,
  // Authorization headers (any scheme), and bearer tokens quoted without one.
  /(?<pre>\b(?:proxy-)?authorization["']?\s{0,8}[:=]\s{0,8}["']?)(?<secret>(?:(?:Bearer|Basic|Digest|Token|Negotiate|AWS4-HMAC-SHA256)\s{1,8})?(?:[^\s"',;&\\]|\\\S){1,4096})/gi,
  /(?<pre>\bBearer\s{1,8})(?<secret>[A-Za-z0-9._~+/-]{8,4096}=*)/g,
  // JSON and quoted keys: "smtpPassword": "…", 'api_key': '…' (escapes inside the value
  // included), and bare values ("pin": 1234), which become a quoted censor so JSON stays JSON.
  new RegExp(
    `(?<pre>"[^"\\s]{0,64}(?:${SECRET_WORD})[^"\\s]{0,64}"\\s{0,8}:\\s{0,8}")(?<secret>(?:[^"\\\\]|\\\\.)*)(?<post>")`,
    'gi',
  ),
  new RegExp(
    `(?<pre>'[^'\\s]{0,64}(?:${SECRET_WORD})[^'\\s]{0,64}'\\s{0,8}:\\s{0,8}')(?<secret>(?:[^'\\\\]|\\\\.)*)(?<post>')`,
    'gi',
  ),
  new RegExp(
    `(?<pre>["'][^"'\\s\\\\]{0,64}(?:${SECRET_WORD})[^"'\\s\\\\]{0,64}["']\\s{0,8}:\\s{0,8})(?<bare>[^\\s"',{}[\\]\\\\]{1,1024})`,
    'gi',
  ),
  // The same keys in JSON that is itself inside a JSON string (a message quoting a config file,
  // printed as JSON): \"smtpPassword\": \"…\".
  new RegExp(
    String.raw`(?<pre>\\"[^"\s\\]{0,64}(?:${SECRET_WORD})[^"\s\\]{0,64}\\"\s{0,8}:\s{0,8}\\")(?<secret>(?:[^"\\]|\\\\){0,4096})(?<post>\\")`,
    'gi',
  ),
  // Command-line flags with a separate value: --password X, --db-password X, --token X, --api-key X.
  // `-p X` is left alone on purpose: for psql, ssh, redis-cli and most tools it is the port.
  new RegExp(
    `(?<pre>(?:^|\\s)--?[a-z0-9-]{0,40}(?:${SECRET_WORD})\\s{1,8}["']?)(?<secret>(?:[^\\s"'\\\\]|\\\\\\S){1,4096})`,
    'gi',
  ),
  // key=value and key: value in text, query strings, env dumps: password=…, pass=…, pwd=…,
  // secret=…, token=…, api_key=…, PGPASSWORD=…, smtpPassword: ….
  new RegExp(
    `(?<pre>(?:^|[^A-Za-z0-9])[A-Za-z0-9_.-]{0,40}?(?:${SECRET_WORD})\\s{0,8}[:=]\\s{0,8}["']?)(?<secret>(?:[^\\s"',;&\\\\]|\\\\\\S){1,4096})`,
    'gi',
  ),
  // Well-known token shapes.
  /\bxox[abposre]-[A-Za-z0-9-]{8,512}/g, // Slack bot, user, legacy and refresh tokens
  /\bxapp-[A-Za-z0-9-]{8,512}/g, // Slack app-level tokens
  /\bgh[pousr]_[A-Za-z0-9]{30,255}/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{20,255}/g,
  /\bglpat-[A-Za-z0-9_-]{20,255}/g, // GitLab personal access tokens
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, // AWS access key ids
  /\bAIza[0-9A-Za-z_-]{35}\b/g, // Google API keys
  /\b[rs]k_(?:live|test)_[0-9A-Za-z]{16,255}/g, // Stripe keys
  /\beyJ[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}\.[A-Za-z0-9_-]{8,4096}/g, // JWTs
];

/**
 * Replaces the secrets in a text with REDACTED; with `maxLength`, also cuts the result to that
 * many characters plus a marker (redacting first, see `redactSecrets`). Never throws; idempotent.
 */
export type Redactor = (text: string, maxLength?: number) => string;

/** What a redactor covers beyond the built-in patterns. */
export interface RedactorOptions {
  /** Extra patterns (RegExp or source strings, compiled case-insensitive). */
  readonly patterns?: readonly (RegExp | string)[];
  /**
   * Literal secret values (the SMTP password, the Slack token, a URL's password): every occurrence
   * is replaced, raw and percent-decoded. Values shorter than 4 characters are ignored: they would
   * blank out ordinary words.
   */
  readonly secrets?: readonly string[];
  /**
   * Only the literals and the extra patterns, without the built-in ones: for a sink whose owner
   * turned them off (the notifier's `content.defaultSecretPatterns: false`). Default false.
   */
  readonly only?: boolean;
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function globalize(p: RegExp | string): RegExp {
  if (typeof p === 'string') return new RegExp(p, 'gi');
  return p.flags.includes('g') ? p : new RegExp(p.source, `${p.flags}g`);
}

function replaceAll(text: string, patterns: readonly RegExp[]): string {
  let out = text;
  for (const re of patterns) {
    re.lastIndex = 0;
    out = out.replace(re, (...args: unknown[]) => {
      const groups = args.at(-1);
      if (typeof groups === 'object' && groups !== null) {
        const g = groups as { pre?: string; secret?: string; post?: string; bare?: string };
        if (g.secret !== undefined) return `${g.pre ?? ''}${REDACTED}${g.post ?? ''}`;
        if (g.bare !== undefined) return `${g.pre ?? ''}"${REDACTED}"`;
      }
      return REDACTED;
    });
  }
  return out;
}

/**
 * Builds a redactor from the built-in patterns, extra patterns and literal secret values (literals
 * first: a password need not look like one). The result never throws.
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const patterns: RegExp[] = [];
  const literals = new Set<string>();
  for (const s of options.secrets ?? []) {
    literals.add(s);
    try {
      literals.add(decodeURIComponent(s));
    } catch {
      // Not valid percent-encoding: the raw form is enough.
    }
  }
  const usable = [...literals].filter((s) => s.length >= 4);
  if (usable.length > 0) {
    // Longest first, so a secret that contains another is replaced whole.
    usable.sort((a, b) => b.length - a.length);
    patterns.push(new RegExp(usable.map(escapeRegExp).join('|'), 'g'));
  }
  if (options.only !== true) patterns.push(...DEFAULT_SECRET_PATTERNS);
  for (const p of options.patterns ?? []) patterns.push(globalize(p));
  return (text: string, maxLength?: number): string => redactWith(text, patterns, maxLength);
}

/**
 * `text` with every credential of a built-in form replaced by REDACTED. Never throws; idempotent.
 * With `maxLength`, the result is also cut to that many characters plus a marker: the text is
 * redacted before the final cut (a cut must not leave half a secret that no pattern recognises),
 * and a text far longer than the bound is cut first, so the cost stays bounded whatever the input.
 */
export function redactSecrets(text: string, maxLength?: number): string {
  return redactWith(text, DEFAULT_SECRET_PATTERNS, maxLength);
}

/** How far past the bound a long text is kept for redaction: a credential straddling the bound is seen whole. */
const PRE_CUT_MARGIN = 8192;

function redactWith(text: string, patterns: readonly RegExp[], maxLength: number | undefined): string {
  if (maxLength === undefined) return replaceAll(text, patterns);
  const max = Math.max(0, Math.floor(maxLength));
  if (text.length <= max) return replaceAll(text, patterns);
  const redacted = replaceAll(text.slice(0, max + PRE_CUT_MARGIN), patterns);
  if (redacted.length <= max && text.length <= max + PRE_CUT_MARGIN) return redacted;
  let keep = Math.min(max, redacted.length);
  const last = redacted.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return `${redacted.slice(0, keep)}…[truncated ${text.length - keep} chars]`;
}

/** Key names whose values are never shown, whatever they hold (`password`, `apiToken`, `Authorization`, …). */
const SECRET_KEY =
  /passw(?:or)?d|passphrase|^pwd$|secret|token|api[-_]?key|credential|authorization|cookie|private[-_]?key|auth[-_]?key/i;
// `pass` only as a word of its own (`pass`, `smtp_pass`, `SMTP_PASS`, `smtpPass`), not `bypass` or `compass`.
const PASS_KEY = /(?:^|[_.-])pass$/i;
const CAMEL_PASS_KEY = /[a-z0-9]Pass$/;

/** Whether a key (a JSON key, a configuration key, a context field) names a secret. */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key) || PASS_KEY.test(key) || CAMEL_PASS_KEY.test(key);
}

/** Options of `redactValue`. */
export interface RedactValueOptions extends SafeJsonLimits {
  /** The redactor for strings (default `redactSecrets`). */
  readonly redact?: Redactor;
}

/**
 * A JSON-safe copy of anything (cycles, depth, long strings, hostile getters handled by
 * `toSafeJson` with the given limits) whose secret-named keys hold REDACTED and whose strings
 * (keys included) went through the redactor. Never throws.
 */
export function redactValue(value: unknown, options: RedactValueOptions = {}): JsonValue {
  const redact = options.redact ?? redactSecrets;
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') return redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, JsonValue> = {};
      for (const [k, x] of Object.entries(v)) out[redact(k)] = isSecretKey(k) ? REDACTED : walk(x);
      return out;
    }
    return v;
  };
  return walk(toSafeJson(value, options));
}
