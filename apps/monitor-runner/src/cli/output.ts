// Where commands write. Commands never touch process.stdout: cli.ts hands them an Output, tests
// hand them one that collects the text.
import { createRedactor } from '@ccat/errors';

export interface Output {
  /** Writes lines to stdout (a newline is added): the command's result. */
  out(text: string): void;
  /** Writes lines to stderr (a newline is added): errors, warnings, hints. */
  err(text: string): void;
}

/** Writes the command's one JSON document (Dates as ISO strings); `command` names its shape. */
export function writeJson<T extends { readonly command: string }>(out: Output, document: T): void {
  out.out(JSON.stringify(document, null, 2));
}

/**
 * An Output that replaces every known secret (the literals of the environment and configuration)
 * and every credential of a built-in form (@ccat/errors' one redactor) before it reaches the
 * terminal, for tables and JSON alike (a `--json` document is redacted value by value, so it stays
 * one valid JSON document with its indentation, see @ccat/errors' `redactJson`). Every command writes
 * through it (run-cli.ts makes it), so it is the CLI's one choke point. `secrets` is read at each
 * write, so secrets learnt later (from the config file) count too.
 */
export function scrubbingOutput(inner: Output, secrets: readonly string[]): Output {
  return {
    out: (text) => inner.out(createRedactor({ secrets })(text)),
    err: (text) => inner.err(createRedactor({ secrets })(text)),
  };
}
