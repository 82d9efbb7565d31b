// Secrets never leave the process in a notification: every text is passed through the one
// redactor of @ccat/errors (its patterns, its censor) before any channel sees it. This file only
// adds the notifier's configured extras (literal secrets, extra patterns) and the context walk.
import {
  DEFAULT_SECRET_PATTERNS,
  REDACTED,
  createRedactor as createBaseRedactor,
  redactValue,
  type JsonValue,
  type Redactor,
  type RedactorOptions as BaseRedactorOptions,
} from '@ccat/errors';

export { DEFAULT_SECRET_PATTERNS, REDACTED, type Redactor };

/** The one redactor's options, plus whether the built-in patterns apply (default true). */
export interface RedactorOptions extends BaseRedactorOptions {
  /**
   * Use the built-in patterns too (default true). Texts written to the database are redacted with
   * them already, whatever this says; turning them off only stops their second pass at delivery.
   */
  readonly defaults?: boolean;
}

/**
 * Builds the notifier's redactor: @ccat/errors' `createRedactor` with the configured literal
 * secrets (the SMTP password, the Slack token) and extra patterns. Never throws.
 */
export function createRedactor(options: RedactorOptions = {}): Redactor {
  const { defaults, ...rest } = options;
  return createBaseRedactor({ ...rest, only: defaults === false });
}

/**
 * A JSON-safe copy of a context object with secret-named keys blanked and every string passed
 * through the redactor (`redactValue` of @ccat/errors). Never throws (hostile getters, cycles and
 * depth are handled by toSafeJson).
 */
export function redactContext(
  context: Readonly<Record<string, unknown>>,
  redact: Redactor,
): Record<string, JsonValue> {
  const json = redactValue(context, { redact, maxDepth: 5, maxString: 4096, maxArray: 50, maxKeys: 50 });
  return json !== null && typeof json === 'object' && !Array.isArray(json) ? json : { value: json };
}
