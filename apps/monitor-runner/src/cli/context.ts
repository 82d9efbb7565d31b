// What a command's action gets from the program: the output, and `run`, which loads the
// configuration only once the command's own arguments were accepted, and records the exit code.
import type { CommandUnknownOpts } from '@commander-js/extra-typings';
import type { MonitorConfig } from '../config.js';
import type { ExitCode } from './errors.js';
import type { Output } from './output.js';

/** One command run, its arguments already valid. */
export interface Session {
  /** Scrubbed of every known secret. */
  readonly out: Output;
  /** --json: one JSON document on stdout instead of tables; nothing else on stdout. */
  readonly json: boolean;
  /** The operating-system user, cleaned for the manual_retry events (`cli:<operator>`). */
  readonly operator: string;
  readonly config: Readonly<MonitorConfig>;
}

export interface CliContext {
  /**
   * Loads the configuration (global --config, CCAT_CONFIG, environment) and runs `f`; its result is
   * the process's exit code. Errors propagate to the program, which maps them to one exit code.
   */
  run(command: CommandUnknownOpts, f: (session: Session) => Promise<ExitCode>): Promise<void>;
}
