// What a configuration error shows of a value: the one rule for every package that refuses
// configuration (the config sources of @ccat/service, the notifier's own checks).
import { describe, truncate } from './internal/safe.js';
import { isSecretKey, REDACTED, redactSecrets } from './redact.js';

/**
 * What a configuration error shows of a value: never a secret, never a whole structure (an object
 * beside a misspelt key holds its siblings, a password among them). A value under a secret-named
 * key is REDACTED; a string is redacted by pattern, then cut; an object shows its keys only; an
 * array its length.
 */
export function describeConfigValue(value: unknown, path: readonly string[] = []): string {
  if (value === undefined) return 'nothing';
  if (path.some((p) => isSecretKey(p))) return REDACTED;
  if (typeof value === 'string') return JSON.stringify(truncate(redactSecrets(value), 80));
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (value !== null && typeof value === 'object') {
    let keys: string[];
    try {
      keys = Object.keys(value);
    } catch {
      return 'an unreadable object';
    }
    const shown = keys.slice(0, 10).map((k) => truncate(redactSecrets(k), 40));
    return keys.length === 0
      ? 'an empty object'
      : `an object with keys ${shown.join(', ')}${keys.length > 10 ? ', …' : ''}`;
  }
  return truncate(redactSecrets(describe(value, 80)), 80);
}
