// Connection URLs carry passwords; the CLI names the server it could not reach, never the secret.

const SECRET_PARAM = /pass|secret|token|key/i;

/** The URL with its password (and password-like query parameters) replaced by `***`. */
export function redactUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Unparseable: we cannot tell where a secret would sit, so show nothing of it.
    return '(unparseable URL)';
  }
  if (u.password) u.password = '***';
  for (const key of [...u.searchParams.keys()]) if (SECRET_PARAM.test(key)) u.searchParams.set(key, '***');
  return u.toString();
}

/** The secrets in a URL, raw and percent-decoded, for scrubbing output that might echo them. */
export function urlSecrets(url: string): string[] {
  const found: string[] = [];
  try {
    const u = new URL(url);
    if (u.password) found.push(u.password);
    for (const [key, value] of u.searchParams) if (SECRET_PARAM.test(key) && value) found.push(value);
  } catch {
    // An unparseable URL is never printed (redactUrl), so there is nothing to scrub for.
  }
  const all = new Set<string>();
  for (const s of found) {
    all.add(s);
    try {
      all.add(decodeURIComponent(s));
    } catch {
      // Not valid percent-encoding: the raw form is already in the set.
    }
  }
  // Very short secrets would blank out ordinary words; redactUrl already hides them where we print URLs.
  return [...all].filter((s) => s.length >= 3);
}

/** `text` with every occurrence of each secret replaced by `***`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
