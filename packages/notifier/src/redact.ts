// Secrets never leave the process in a notification: error messages quote connection strings,
// command lines and HTTP headers, so every text is passed through a redactor before any channel
// sees it.
import { toSafeJson, type JsonValue } from '@ccat/errors';

export const REDACTED = '[REDACTED]';

/**
 * Built-in patterns. A pattern with named groups `pre`/`secret`/`post` keeps `pre` and `post` and
 * replaces only `secret` (so `postgres://u:pw@h` becomes `postgres://u:[REDACTED]@h`); without
 * groups the whole match is replaced.
 */
export const DEFAULT_SECRET_PATTERNS: readonly RegExp[] = [
  // Private keys first: their bodies contain nothing the other patterns would make safe.
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
  // Credentials in URLs: scheme://user:password@host.
  /(?<pre>\b[a-z][a-z0-9+.-]*:\/\/[^\s:/?#@]*:)(?<secret>[^\s/?#@]+)(?<post>@)/gi,
  // Authorization headers, and bearer tokens quoted without one.
  /(?<pre>\bauthorization["']?\s*[:=]\s*["']?)(?<secret>(?:(?:Bearer|Basic|Digest|Token)\s+)?[^\s"',;&]+)/gi,
  /(?<pre>\bBearer\s+)(?<secret>[A-Za-z0-9._~+/-]{8,}=*)/g,
  // key=value, key: value, "key": "value" for secret-looking keys.
  /(?<pre>\b(?:password|passwd|pwd|pass|passphrase|secret|client[_-]?secret|token|access[_-]?token|refresh[_-]?token|api[_-]?key|apikey|access[_-]?key|secret[_-]?key|private[_-]?key|credentials?)["']?\s*[:=]\s*["']?)(?<secret>[^\s"',;&]+)/gi,
  // Well-known token shapes.
  /\bxox[abposre]-[A-Za-z0-9-]{8,}/g,
  /\bxapp-[A-Za-z0-9-]{8,}/g,
  /\bgh[pousr]_[A-Za-z0-9]{30,}/g,
  /\bgithub_pat_[A-Za-z0-9_]{20,}/g,
  /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
];

/** Context keys whose values are never shown, whatever they contain. */
const SECRET_KEY =
  /pass(?:word|wd|phrase)?$|secret|token|api[-_]?key|credential|authorization|cookie|private[-_]?key/i;

export interface RedactorOptions {
  /** Extra patterns (RegExp or source strings, compiled case-insensitive). */
  readonly patterns?: readonly (RegExp | string)[];
  /** Literal secret values (the SMTP password, the Slack token): every occurrence is replaced. */
  readonly secrets?: readonly string[];
  /** Use DEFAULT_SECRET_PATTERNS too (default true). */
  readonly defaults?: boolean;
}

/** Replaces secrets in a text. Never throws. */
export type Redactor = (text: string) => string;

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function globalize(p: RegExp | string): RegExp {
  if (typeof p === 'string') return new RegExp(p, 'gi');
  return p.flags.includes('g') ? p : new RegExp(p.source, `${p.flags}g`);
}

/** Builds a redactor from the default patterns, extra patterns and literal secret values. */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const patterns: RegExp[] = [];
  // Literal secrets first: a password may not look like one.
  const literals = (options.secrets ?? []).filter((s) => s.length >= 4);
  if (literals.length > 0) {
    // Longest first, so a secret that contains another is replaced whole.
    const sorted = [...new Set(literals)].sort((a, b) => b.length - a.length);
    patterns.push(new RegExp(sorted.map(escapeRegExp).join('|'), 'g'));
  }
  if (options.defaults ?? true) patterns.push(...DEFAULT_SECRET_PATTERNS);
  for (const p of options.patterns ?? []) patterns.push(globalize(p));

  return (text: string): string => {
    let out = text;
    for (const re of patterns) {
      re.lastIndex = 0;
      out = out.replace(re, (...args: unknown[]) => {
        const groups = args.at(-1);
        if (typeof groups === 'object' && groups !== null) {
          const g = groups as { pre?: string; secret?: string; post?: string };
          if (g.secret !== undefined) return `${g.pre ?? ''}${REDACTED}${g.post ?? ''}`;
        }
        return REDACTED;
      });
    }
    return out;
  };
}

/**
 * A JSON-safe copy of a context object with secret-named keys blanked and every string passed
 * through the redactor. Never throws (hostile getters, cycles and depth are handled by toSafeJson).
 */
export function redactContext(
  context: Readonly<Record<string, unknown>>,
  redact: Redactor,
): Record<string, JsonValue> {
  const walk = (v: JsonValue): JsonValue => {
    if (typeof v === 'string') return redact(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v !== null && typeof v === 'object') {
      const out: Record<string, JsonValue> = {};
      for (const [k, x] of Object.entries(v)) out[k] = SECRET_KEY.test(k) ? REDACTED : walk(x);
      return out;
    }
    return v;
  };
  const json = toSafeJson(context, { maxDepth: 5, maxString: 4096, maxArray: 50, maxKeys: 50 });
  const safe = json !== null && typeof json === 'object' && !Array.isArray(json) ? json : { value: json };
  return walk(safe) as Record<string, JsonValue>;
}
