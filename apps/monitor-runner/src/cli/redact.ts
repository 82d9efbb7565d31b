// Connection URLs carry passwords; the CLI names the server it could not reach, never the secret.
// Everything here is the one redactor of @ccat/errors (its patterns, its censor); this file only
// adds what the CLI knows: the literal secrets of its environment and configuration.
// URLs themselves are shown through @ccat/service's `redactUrl`.
import { createRedactor, redactSecrets } from '@ccat/errors';

const USERINFO_PASSWORD = /^[a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/?#@]{0,256}:([^\s]{1,1024})@[^\s@/]{0,256}/i;

/**
 * The secrets in a URL (its password, as typed and as the URL parser reads it, and the values of
 * secret-named query parameters), for scrubbing output that might echo them in another form.
 */
export function urlSecrets(url: string): string[] {
  const found: string[] = [];
  const typed = USERINFO_PASSWORD.exec(url)?.[1];
  if (typed !== undefined) found.push(typed);
  try {
    const u = new URL(url);
    if (u.password) found.push(u.password);
    for (const [key, value] of u.searchParams)
      if (redactSecrets(`${key}=x`) !== `${key}=x` && value) found.push(value);
  } catch {
    // An unparseable URL is never printed (@ccat/service's redactUrl); the typed password above still counts.
  }
  // Very short secrets would blank out ordinary words; the patterns still hide them where URLs print.
  return [...new Set(found)].filter((s) => s.length >= 3);
}

/**
 * `text` with every occurrence of each literal secret (raw and percent-decoded) and every
 * credential of a built-in form replaced by `[REDACTED]`.
 */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  return createRedactor({ secrets })(text);
}
