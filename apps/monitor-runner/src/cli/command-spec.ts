// What each command declares about itself: its name, its flags (node:util parseArgs shapes) and
// its help text. The parser and the help output are built from these, so they cannot disagree.
import type { ParseArgsConfig } from 'node:util';

export const COMMAND_NAMES = ['status', 'failures', 'retry', 'report', 'migrate'] as const;
export type CommandName = (typeof COMMAND_NAMES)[number];

export type OptionSpecs = NonNullable<ParseArgsConfig['options']>;

/** Flag values after parsing: strings for valued flags, booleans for switches. */
export type FlagValues = Readonly<Record<string, string | boolean | undefined>>;

export interface CommandSpec {
  readonly name: CommandName;
  /** One line for the global help. */
  readonly summary: string;
  /** The command's own help: synopsis, what it does, its flags. */
  readonly usage: string;
  /** Its flags, besides the global ones. */
  readonly options: OptionSpecs;
}

export function isCommandName(value: string): value is CommandName {
  return (COMMAND_NAMES as readonly string[]).includes(value);
}
