// Over 300 lines: the patterns and the walk that applies them are one unit; split, a sink could import half.
// The one redactor. Secrets never leave the process or reach storage: error messages quote
// connection strings, command lines, HTTP headers and configuration, so every sink (log lines,
// database text and JSON columns, CLI output, alerts, configuration errors) passes its text
// through these patterns and shows one censor string in place of a secret.
import { toSafeJson, truncate, type JsonValue, type SafeJsonLimits } from './internal/safe.js';

/** What every sink shows in place of a secret. */
export const REDACTED = '[REDACTED]';

// A value as written after `key=`, `key: ` or a flag: quoted (to the closing quote, escapes
// included, or to the end of the line when the quote never closes) or bare (to ASCII whitespace
// or a separator; a backslash only with the character it escapes, and not a `\n`, `\r` or `\t`
// escape, which ends a line in JSON text). A no-break space is not a separator:
// `password=abc<NBSP>rest` is one value.
const QUOTED_VALUE = String.raw`"(?:[^"\\\r\n]|\\[^\r\n]){0,4096}"?|'(?:[^'\\\r\n]|\\[^\r\n]){0,4096}'?`;
const BARE_VALUE = String.raw`(?:[^ \t\r\n\f\v"',;&\\]|\\[^ \t\r\n\f\vnrt]){1,4096}`;
const VALUE = `${QUOTED_VALUE}|${BARE_VALUE}`;

// URL userinfo of any scheme: scheme://user:password@host. The password may hold `#`, `/`, `@`,
// `:` or a quote (unencoded, as people type them), so it runs greedily to the LAST `@` before the
// host; a `"` that ends a JSON string (followed by `,` `:` `}` `]`) ends it.
const URL_USERINFO =
  /(?<pre>\b[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/?#@"'<>]{0,256}:)(?<secret>(?:[^\s"<>]|"(?![\s,:}\]])){1,1024})(?<post>@[^\s@/"'<>\\]{0,256})/gi;

/**
 * The built-in patterns, one for each common form of a credential. Named groups decide what is
 * replaced: `pre`/`secret`/`post` keep `pre` and `post` and replace only `secret` (so
 * `postgres://u:pw@h` becomes `postgres://u:[REDACTED]@h`; a quoted secret keeps its quotes);
 * `pre`/`bare` replaces a bare value after a quoted key with the censor in the key's quotes (so
 * JSON stays JSON); a `key` group makes the match count only when `isSecretKey(key)` holds (one
 * key-name rule for JSON keys, `key=value`, `key: value` and `--flag value`); a `user` group (a URL
 * user without a password) counts only when it looks like a token (letters and digits, 12 or more
 * characters). Without groups the whole match is replaced. Every repetition is bounded, so no
 * input makes a pattern backtrack without end (a sink cuts very long texts before redacting them,
 * see `redactSecrets`).
 */
export const DEFAULT_SECRET_PATTERNS: readonly RegExp[] = [
  // PEM private keys first: their bodies contain nothing the other patterns would make safe. A
  // block without its END line (a cut message) is redacted over its header and the lines after it
  // that are wholly base64 or PEM headers (raw or as JSON `\n` escapes), never past them: the
  // rest of the text survives.
  /-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]{0,65536}?-----END [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----|(?:(?:\r?\n|\\r\\n|\\n)(?:[A-Za-z0-9+/=]{0,128}(?=\r?\n|\\[rn]|["']|$)|(?:Proc-Type|DEK-Info):[^\r\n"\\]{0,128}))*)/g,
  URL_USERINFO,
  // A token as the URL user, without a password: https://TOKEN@github.com/… (git, CI).
  /(?<pre>\b[a-z][a-z0-9+.-]{0,31}:\/\/)(?<user>[A-Za-z0-9._~+=-]{12,512})(?=@[^\s@/"'<>\\]{1,256})/gi,
  // Slack incoming-webhook URLs: the path is the credential.
  /(?<pre>\bhooks\.slack\.com\/(?:services|workflows|triggers)\/)(?<secret>[A-Za-z0-9/_-]{1,256})/g,
  // Authorization headers (any scheme), and bearer tokens quoted without one.
  /(?<pre>\b(?:proxy-)?authorization["']?\s{0,8}[:=]\s{0,8}["']?)(?<secret>(?:(?:Bearer|Basic|Digest|Token|Negotiate|AWS4-HMAC-SHA256)\s{1,8})?(?:[^\s"',;&\\]|\\\S){1,4096})/gi,
  /(?<pre>\bBearer\s{1,8})(?<secret>[A-Za-z0-9._~+/-]{8,4096}=*)/g,
  // Cookie headers: every cookie is a session, so the whole header value (to the end of the line).
  /(?<pre>\b(?:set-)?cookie["']?\s{0,8}:\s{0,8})(?<secret>(?:[^\r\n"\\]|\\[^rn"]){1,4096})/gi,
  // JSON and quoted keys: "smtpPassword": "…", 'api_key': '…' (escapes inside the value
  // included), and bare values ("pin": 1234), which become a censor in the key's quotes.
  /(?<pre>"(?<key>[^"\s]{1,128})"\s{0,8}:\s{0,8}")(?<secret>(?:[^"\\]|\\.){0,4096})(?<post>")/g,
  /(?<pre>'(?<key>[^'\s]{1,128})'\s{0,8}:\s{0,8}')(?<secret>(?:[^'\\]|\\.){0,4096})(?<post>')/g,
  /(?<pre>(?<q>["'])(?<key>[^"'\s\\]{1,128})\k<q>\s{0,8}:\s{0,8})(?<bare>[^\s"',{}[\]\\]{1,1024})/g,
  // The same keys in JSON that is itself inside a JSON string (a message quoting a config file,
  // printed as JSON): \"smtpPassword\": \"…\".
  /(?<pre>\\"(?<key>[^"\s\\]{1,128})\\"\s{0,8}:\s{0,8}\\")(?<secret>(?:[^"\\]|\\\\){0,4096})(?<post>\\")/g,
  // Command-line flags with a separate value: --password X, --db-password X, --token X, --api-key X.
  // `-p X` is left alone here on purpose: for psql, ssh, redis-cli and most tools it is the port.
  new RegExp(
    String.raw`(?<pre>(?:^|\s)--?(?<tkey>[A-Za-z0-9][A-Za-z0-9_-]{0,63})\s{1,8})(?<secret>${VALUE})`,
    'g',
  ),
  // key=value and key: value in text, query strings, env dumps, YAML: password=…, PGPASSWORD=…,
  // SECRET_KEY=…, REDISCLI_AUTH=…, smtpPassword: …, password: 'a b'.
  new RegExp(
    String.raw`(?<pre>(?<![A-Za-z0-9_.])(?<tkey>[A-Za-z_][A-Za-z0-9_.-]{0,63})\s{0,8}(?<sep>[:=])\s{0,8})(?<secret>${VALUE})`,
    'g',
  ),
  // Tools whose short flag is the password (their manuals): `redis-cli -a PW`, `sshpass -p PW`,
  // `mysql -pPW` (mysql, mysqldump, mysqladmin, mariadb; there `-P` is the port).
  new RegExp(String.raw`(?<pre>\bredis-cli\b[^\r\n]{0,512}?\s-a\s{1,8})(?<secret>${VALUE})`, 'g'),
  new RegExp(String.raw`(?<pre>\bsshpass\b[^\r\n]{0,128}?\s-p\s{0,8})(?<secret>${VALUE})`, 'g'),
  new RegExp(
    String.raw`(?<pre>\b(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump)\b[^\r\n]{0,512}?\s-p)(?<secret>${VALUE})`,
    'g',
  ),
  // The Redis AUTH command as clients and servers quote it: `AUTH pw`, `AUTH user pw`, `HELLO 3 AUTH user pw`.
  /(?<pre>\bAUTH\s{1,8})(?!\[REDACTED\])(?<secret>[^\s"'<>]{1,512}(?:[ \t]{1,8}[^\s"'<>]{1,512})?)/g,
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

interface Groups {
  readonly pre?: string;
  readonly secret?: string;
  readonly post?: string;
  readonly bare?: string;
  readonly q?: string;
  readonly key?: string;
  readonly tkey?: string;
  readonly sep?: string;
  readonly user?: string;
}

/** A user name that is a token rather than a name: letters and digits mixed. */
const looksLikeToken = (s: string): boolean => /[0-9]/.test(s) && /[A-Za-z]/.test(s);

/** What one match becomes, or undefined when it is not a secret after all. */
function replacement(match: string, g: Groups | undefined): string | undefined {
  if (g === undefined) return REDACTED;
  if (g.key !== undefined && !isSecretKey(g.key)) return undefined;
  if (g.tkey !== undefined && !isSecretTextKey(g.tkey, g.sep === ':')) return undefined;
  if (g.user !== undefined) return looksLikeToken(g.user) ? `${g.pre ?? ''}${REDACTED}` : undefined;
  if (g.secret !== undefined) {
    const s = g.secret;
    const quote = s[0] === '"' || s[0] === "'" ? s[0] : '';
    const close = quote !== '' && s.length > 1 && s.endsWith(quote) ? quote : '';
    return `${g.pre ?? ''}${quote}${REDACTED}${close}${g.post ?? ''}`;
  }
  if (g.bare !== undefined) {
    const q = g.q ?? '"';
    return `${g.pre ?? ''}${q}${REDACTED}${q}`;
  }
  return match.length > 0 ? REDACTED : undefined;
}

function applyPattern(text: string, re: RegExp): string {
  re.lastIndex = 0;
  let out = '';
  let last = 0;
  let changed = false;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const start = m.index;
    const g = m.groups as Groups | undefined;
    const r = m[0].length === 0 ? undefined : replacement(m[0], g);
    if (r === undefined) {
      // Not a secret (or empty): look again after the key and its separator, so that a value
      // like `token=x` after a harmless `user:` is still seen.
      re.lastIndex = start + Math.max(1, g?.pre?.length ?? 0);
      continue;
    }
    out += text.slice(last, start) + r;
    last = start + m[0].length;
    changed = true;
  }
  return changed ? out + text.slice(last) : text;
}

function replaceAll(text: string, patterns: readonly RegExp[]): string {
  let out = text;
  for (const re of patterns) out = applyPattern(out, re);
  return out;
}

// The fast path. Every built-in pattern needs one of these fragments in the text (lower-cased)
// before it can replace anything, so a text with none of them is left as it is without running the
// patterns one by one. What each pattern needs: PEM `private key` (so `key`); URL userinfo and URL-user tokens
// `://`; Slack webhooks `hooks.slack.com/`; Authorization `auth`; `bearer`; Cookie `cookie`; the
// keyed forms (JSON keys, `key=value`, `key: value`, flags) a key that `isSecretKey` accepts,
// whose lower-cased text holds one of `pw pass auth cookie session jwt otp key secret token
// credential` (every SECRET_WORDS entry, every SECRET_INFIX alternative and the two-word `… key`
// contain one; `judgeKey` only splits and lower-cases, so a word of the key is a substring of the
// lower-cased text); the password-flag tools their names (`sshpass` holds `pass`); Redis `AUTH`;
// each token shape its prefix.
// Lower-casing with toLowerCase maps at least what a case-insensitive pattern matches (and a few
// non-ASCII letters more, as `judgeKey` does), so the test can only say "maybe" too often, never
// "no" wrongly. A test fuzzes the gate against the ungated patterns (redact-fast-path.test.ts).
const TRIGGERS =
  /pw|pass|auth|cookie|session|jwt|otp|key|secret|token|credential|bearer|:\/\/|hooks\.slack\.com\/|redis-cli|mysql|mariadb|xox|xapp-|gh[pousr]_|github_pat_|glpat-|akia|asia|aiza|k_live_|k_test_|eyj/;
// What else the JSON-document walk acts on: argument-vector keys (`isArgumentsKey`), and escapes,
// which JSON.parse decodes into text the raw text does not show (`\u0070assword`, `:\/\/`).
const JSON_TRIGGERS = /arg|param|binding|\\/;

/** Whether any built-in pattern may replace something in a text, given lower-cased (false: none can). */
const mayHoldSecret = (lower: string): boolean => TRIGGERS.test(lower);

/**
 * Whether the JSON-document walk (`redactJsonDocument`) may change a text that the text pass left
 * unchanged (false: it cannot). Without escapes, every string and key the walk sees is a piece of
 * the text, so with no trigger no pattern matches it (nor a literal: the text holds none), no key is
 * secret-named or an argument vector, and an unchanged walk keeps the text as it is. Extra patterns
 * are not covered (a piece may match what the whole does not): callers check them apart.
 */
function mayChangeAsJson(text: string): boolean {
  if (!/^\s*[[{]/.test(text)) return false;
  const lower = text.toLowerCase();
  return mayHoldSecret(lower) || JSON_TRIGGERS.test(lower);
}

/**
 * A redactor's patterns in the order they run: `before` (literal secrets) and `after` (extra
 * patterns) always, `gated` (the built-in patterns) only when the text holds a trigger.
 */
interface PatternSet {
  readonly before: readonly RegExp[];
  readonly gated: readonly RegExp[];
  readonly after: readonly RegExp[];
}

function replaceAllGated(text: string, set: PatternSet): string {
  let out = set.before.length > 0 ? replaceAll(text, set.before) : text;
  if (set.gated.length > 0 && mayHoldSecret(out.toLowerCase())) out = replaceAll(out, set.gated);
  return set.after.length > 0 ? replaceAll(out, set.after) : out;
}

/**
 * Builds a redactor from the built-in patterns, extra patterns and literal secret values (literals
 * first: a password need not look like one). The result never throws.
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const before: RegExp[] = [];
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
    before.push(new RegExp(usable.map(escapeRegExp).join('|'), 'g'));
  }
  const set: PatternSet = {
    before,
    gated: options.only === true ? [] : DEFAULT_SECRET_PATTERNS,
    // Extra patterns are the caller's: nothing says what they need, so they always run.
    after: (options.patterns ?? []).map(globalize),
  };
  return (text: string, maxLength?: number): string => redactWith(text, set, maxLength);
}

const BUILT_IN: PatternSet = { before: [], gated: DEFAULT_SECRET_PATTERNS, after: [] };

/**
 * `text` with every credential of a built-in form replaced by REDACTED. Never throws; idempotent.
 * With `maxLength`, the result is also cut to that many characters plus a marker: the text is
 * redacted before the final cut (a cut must not leave half a secret that no pattern recognises),
 * and a text far longer than the bound is cut first, so the cost stays bounded whatever the input.
 */
export function redactSecrets(text: string, maxLength?: number): string {
  if (text.length > MEMO_MAX_TEXT || !(maxLength === undefined || text.length <= maxLength))
    return redactWith(text, BUILT_IN, maxLength);
  if (clean.has(text)) return text;
  const out = redactWith(text, BUILT_IN, maxLength);
  if (out === text) {
    if (clean.size >= MEMO_ENTRIES) clean.clear();
    // A copy: a text cut from a larger one (slice, split, a regex capture) keeps that one alive in V8.
    clean.add(JSON.parse(JSON.stringify(text)) as string);
  }
  return out;
}

/** Texts up to this many characters that the built-in patterns left unchanged are remembered (`redactSecrets`). */
const MEMO_MAX_TEXT = 256;
/** Remembered texts before the memo starts over. */
const MEMO_ENTRIES = 4096;
/**
 * Short texts `redactSecrets` left unchanged. Keys, codes, names, worker ids and the messages the
 * services build are the same on every row of a batch and every line of a log: a lookup hashes the
 * text once where the gate and the patterns scan it. Only clean texts are kept (a text holding a
 * secret is redacted every time and never retained); the built-in patterns never change, so a
 * remembered answer stays right. Bounded: at most MEMO_ENTRIES texts of at most MEMO_MAX_TEXT characters,
 * each a copy of its own (never a slice that holds a larger text alive).
 */
const clean = new Set<string>();

/** How far past the bound a long text is kept for redaction: a credential straddling the bound is seen whole. */
const PRE_CUT_MARGIN = 8192;

function redactWith(text: string, set: PatternSet, maxLength: number | undefined): string {
  const max = maxLength === undefined ? Infinity : Math.max(0, Math.floor(maxLength));
  if (text.length <= max) {
    const plain = replaceAllGated(text, set);
    if (plain === text && set.after.length === 0 && !mayChangeAsJson(text)) return text;
    // A JSON document is redacted value by value, so the result is JSON still; the text pass's
    // result is kept (with the document's own spacing) when it means exactly the same.
    const json = redactJsonDocument(text, (t) => redactWith(t, set, undefined));
    return json === undefined || sameJson(plain, json) ? plain : json;
  }
  const redacted = replaceAllGated(text.slice(0, max + PRE_CUT_MARGIN), set);
  if (redacted.length <= max && text.length <= max + PRE_CUT_MARGIN) return redacted;
  let keep = Math.min(max, redacted.length);
  const last = redacted.charCodeAt(keep - 1);
  if (keep > 0 && last >= 0xd800 && last <= 0xdbff) keep -= 1;
  return `${redacted.slice(0, keep)}…[truncated ${text.length - keep} chars]`;
}

// The key-name rule. A key is split into its words (camelCase, snake_case, kebab-case, dotted,
// SCREAMING_CASE): it names a secret when one of its words is a secret word, or when two adjacent
// words make a key name (`api key`, `ENCRYPTION_KEY`). Long unambiguous words also count inside a
// word run together (`PGPASSWORD`, `smtppassword`, `xsrftoken`); short ones (`pw`, `pass`, `auth`)
// only as words of their own, so `bypass`, `compass` and `author` stay readable.
const SECRET_WORDS = new Set([
  'pw',
  'pwd',
  'pass',
  'passwd',
  'passcode',
  'passkey',
  'auth',
  'authn',
  'authz',
  'cookie',
  'cookies',
  'session',
  'sessionid',
  'jwt',
  'otp',
  'apikey',
  'accesskey',
  'privatekey',
  'secretkey',
  'encryptionkey',
  'signingkey',
  'sessionkey',
  'authkey',
  'masterkey',
  'privkey',
]);
/** Words that name a secret wherever they appear inside a word. */
const SECRET_INFIX = /passw(?:or)?d|passphrase|secret|token|credential|authori[sz]ation|apikey|privatekey/;
/** The first word of a two-word key name whose second word is `key`. */
const KEY_QUALIFIERS = new Set([
  'api',
  'access',
  'private',
  'priv',
  'secret',
  'encryption',
  'signing',
  'session',
  'auth',
  'master',
  'client',
  'license',
  'ssh',
  'gpg',
  'pgp',
  'hmac',
]);
/** Keys longer than this are judged on their first and last part (a key is a name, not a document). */
const MAX_KEY_JUDGED = 256;
const keyVerdicts = new Map<string, KeyVerdict>();

/** What the key-name rule finds in a key: a secret word anywhere, and what its last word is. */
interface KeyVerdict {
  readonly any: boolean;
  /** The last word (or last two: `secret key`) names a secret. */
  readonly last: 'strong' | 'weak' | undefined;
}

/** Words that name a secret only when `=` gives them a value, not in prose (`invalid_auth: the token is wrong`). */
const WEAK_WORDS = new Set(['auth', 'authn', 'authz', 'session']);

function judgeKey(key: string): KeyVerdict {
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');
  const secretAt = (i: number): boolean => {
    const w = words[i]!;
    return (
      SECRET_WORDS.has(w) ||
      SECRET_INFIX.test(w) ||
      (w === 'key' && i > 0 && KEY_QUALIFIERS.has(words[i - 1]!))
    );
  };
  let any = false;
  for (let i = 0; i < words.length && !any; i++) any = secretAt(i);
  const n = words.length - 1;
  const last = n >= 0 && secretAt(n) ? (WEAK_WORDS.has(words[n]!) ? 'weak' : 'strong') : undefined;
  return { any, last };
}

/** The verdict on a key, cached (keys repeat: the same fields on every log line). */
function verdictOf(key: string): KeyVerdict {
  const judged =
    key.length > MAX_KEY_JUDGED
      ? `${key.slice(0, MAX_KEY_JUDGED / 2)} ${key.slice(-MAX_KEY_JUDGED / 2)}`
      : key;
  let verdict = keyVerdicts.get(judged);
  if (verdict === undefined) {
    verdict = judgeKey(judged);
    if (keyVerdicts.size >= 4096) keyVerdicts.clear();
    keyVerdicts.set(judged, verdict);
  }
  return verdict;
}

/**
 * The key-name rule for a key written in free text (`KEY=value`, `key: value`, `--flag value`),
 * where keys are also error codes and labels: the key's LAST word must name a secret
 * (`SECRET_KEY=`, `REDISCLI_AUTH=`, `db-password:`; not `token_revoked:` or `--password-file`), and
 * `auth`/`session` count only with `=` or a flag, not after a colon (`invalid_auth: the token is
 * wrong` is prose).
 */
function isSecretTextKey(key: string, colon: boolean): boolean {
  const { last } = verdictOf(key);
  return last === 'strong' || (last === 'weak' && !colon);
}

/**
 * Whether a key (a JSON key, a configuration key, a context field, an environment variable, a
 * flag name) names a secret: `password`, `DB_PASSWORD`, `PGPASSWORD`, `smtpPass`, `pw`, `auth`,
 * `REDISCLI_AUTH`, `sessionKey`, `Cookie`, `SECRET_KEY`, `encryptionKey`, `x-api-key`,
 * `Authorization`; not `bypass`, `compass`, `author`, `passenger`, `keyPrefix`. Never throws.
 */
export function isSecretKey(key: string): boolean {
  return verdictOf(key).any;
}

/**
 * Whether a key names an argument vector (`args`, `argv`, `spawnargs`, `execArgv`, `arguments`,
 * `params`, `parameters`, `bindings`): the command line or statement parameters a library keeps
 * on its errors (ioredis `command.args`, child_process `spawnargs`, SQL bindings). Their items are
 * positional, so no key says which one is the password (`AUTH user pw`, `sshpass -p pw`): an
 * array under such a key is never shown, only its length.
 */
export function isArgumentsKey(key: string): boolean {
  const tail = key.length > MAX_KEY_JUDGED ? key.slice(-MAX_KEY_JUDGED) : key;
  return /(?:args?|argv|arguments|params|parameters|bindings)$/i.test(tail);
}

/** Options of `redactValue`. */
export interface RedactValueOptions extends SafeJsonLimits {
  /** The redactor for strings (default `redactSecrets`). */
  readonly redact?: Redactor;
}

/**
 * A JSON-safe copy of anything (cycles, shared references, depth, long strings and keys, the
 * total number of values, hostile getters: handled by `toSafeJson` with the given limits) whose
 * secret-named keys (`isSecretKey`) hold REDACTED, whose argument vectors (`isArgumentsKey`: an
 * array under `args`, `argv`, `spawnargs`, …) are shown only by their length, and whose strings
 * (keys included) went through the redactor. Never throws; the cost is bounded by the limits.
 */
export function redactValue(value: unknown, options: RedactValueOptions = {}): JsonValue {
  return redactTree(toSafeJson(value, options), options.redact ?? redactSecrets, () => true) as JsonValue;
}

/**
 * A parsed JSON value with every string and key through `redact`, the values of secret-named keys
 * REDACTED where `hides(value)` says so, and argument vectors (`argv`, `args`…) by their length.
 */
function redactTree(
  v: unknown,
  redact: (text: string) => string,
  hides: (value: unknown) => boolean,
): unknown {
  if (typeof v === 'string') return redact(v);
  if (Array.isArray(v)) return v.map((x) => redactTree(x, redact, hides));
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    out[redact(k)] =
      isSecretKey(k) && hides(x)
        ? REDACTED
        : Array.isArray(x) && isArgumentsKey(k)
          ? `${REDACTED} (${x.length} arguments)`
          : redactTree(x, redact, hides);
  }
  return out;
}

/**
 * JSON text with its secrets redacted and still valid JSON: a text that parses as a JSON object or
 * array is redacted value by value (strings and keys through `redact`, the scalar values of
 * secret-named keys REDACTED, argument vectors by their length) and printed again with the
 * indentation it had; any other text goes through `redact` as text. `redactSecrets` and every
 * `createRedactor` redactor do this by themselves for a text that is a whole JSON document; this
 * is for a caller with its own redactor. Never throws.
 */
export function redactJson(text: string, redact: Redactor = redactSecrets): string {
  return redactJsonDocument(text, (t) => redact(t)) ?? redact(text);
}

/** Whether two texts are JSON documents with the same value (same keys in the same order). */
function sameJson(a: string, b: string): boolean {
  try {
    return JSON.stringify(JSON.parse(a)) === JSON.stringify(JSON.parse(b));
  } catch {
    return false;
  }
}

/** The JSON document redacted by value, or undefined when `text` is not a JSON object or array. */
function redactJsonDocument(text: string, redact: (text: string) => string): string | undefined {
  if (!/^\s*[[{]/.test(text) || !/[\]}]\s*$/.test(text)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  // A secret-named key's scalar is hidden; its object or array is walked, a boolean kept.
  const scalar = (x: unknown) => x !== null && typeof x !== 'object' && typeof x !== 'boolean';
  try {
    const lead = /^\s*/.exec(text)?.[0] ?? '';
    const indent = /^\s*[[{]\r?\n([ \t]+)/.exec(text)?.[1] ?? '';
    const trailing = /\s*$/.exec(text)?.[0] ?? '';
    return `${lead}${JSON.stringify(redactTree(parsed, redact, scalar), null, indent)}${trailing}`;
  } catch {
    // Nesting deeper than the stack: the text pass, as for any text.
    return undefined;
  }
}

/** A key as a sink shows it: at most this many characters (before redaction, which costs per character). */
export const MAX_KEY_LENGTH = MAX_KEY_JUDGED;

/** `key` cut to MAX_KEY_LENGTH with a marker. */
export const boundedKey = (key: string): string => truncate(key, MAX_KEY_LENGTH);

/**
 * The secrets of a connection URL (its password as typed and as the URL parser reads it, and the
 * values of secret-named query parameters), for a redactor's `secrets` when output might echo them
 * in another form. Secrets under 3 characters are left out (they would blank ordinary words; the
 * patterns still hide them where URLs print). Never throws (an unparseable URL gives what the
 * userinfo pattern finds).
 */
export function urlSecrets(url: string): string[] {
  const found: string[] = [];
  const typed = new RegExp(URL_USERINFO.source, 'i').exec(url)?.groups?.['secret'];
  if (typed !== undefined) found.push(typed);
  try {
    const u = new URL(url);
    if (u.password) found.push(u.password);
    for (const [key, value] of u.searchParams) if (isSecretKey(key) && value) found.push(value);
  } catch {
    // unparseable: the typed password above still counts
  }
  return [...new Set(found)].filter((s) => s.length >= 3);
}
