// The command line: global flags anywhere, then `<command> [args]`. Two passes of node:util's
// parseArgs: a lenient one that finds the command (so `--config x status` works), then a strict one
// with exactly that command's flags, so a flag of another command is an error, not silently ignored.
import { parseArgs } from 'node:util';
import {
  COMMAND_NAMES,
  isCommandName,
  type CommandName,
  type FlagValues,
  type OptionSpecs,
} from './command-spec.js';
import { UsageError } from './exit-codes.js';
import { COMMANDS, GLOBAL_USAGE } from './usage.js';

const GLOBAL_OPTIONS = {
  config: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies OptionSpecs;

export type CommandLine =
  | { readonly kind: 'help'; readonly command: CommandName | undefined }
  | {
      readonly kind: 'run';
      readonly command: CommandName;
      readonly values: FlagValues;
      readonly positionals: readonly string[];
      readonly json: boolean;
      readonly config: string | undefined;
    };

/** Every flag any command knows: the lenient pass must know which flags take a value. */
function allOptions(): OptionSpecs {
  const all: OptionSpecs = { ...GLOBAL_OPTIONS };
  for (const c of Object.values(COMMANDS)) Object.assign(all, c.options);
  return all;
}

/** node's messages end with advice about `--`; the first sentence is what went wrong. */
function firstSentence(message: string): string {
  const s = message.split(/\.\s/, 1)[0] ?? message;
  return s.charAt(0).toLowerCase() + s.slice(1);
}

/** Parses argv (without node and the script). Throws UsageError for anything it cannot accept. */
export function parseCommandLine(argv: readonly string[]): CommandLine {
  const lenient = parseArgs({
    args: [...argv],
    options: allOptions(),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const known = allOptions();
  const unknown = lenient.tokens.find((t) => t.kind === 'option' && !(t.name in known));
  const first = lenient.positionals[0];
  const help = lenient.values['help'] === true;
  if (first === 'help') {
    const topic = lenient.positionals[1];
    if (topic === undefined) return { kind: 'help', command: undefined };
    if (!isCommandName(topic))
      throw new UsageError(`no help for unknown command "${topic.slice(0, 40)}"`, GLOBAL_USAGE);
    return { kind: 'help', command: topic };
  }
  if (first === undefined) {
    if (unknown?.kind === 'option') throw new UsageError(`unknown option '${unknown.rawName}'`, GLOBAL_USAGE);
    if (help) return { kind: 'help', command: undefined };
    throw new UsageError('no command given', GLOBAL_USAGE);
  }
  if (!isCommandName(first)) {
    // `--bogus x status`: the unknown flag is the mistake, "x" only looks like the command.
    if (unknown?.kind === 'option') throw new UsageError(`unknown option '${unknown.rawName}'`, GLOBAL_USAGE);
    throw new UsageError(
      `unknown command ${JSON.stringify(first.slice(0, 40))}; expected one of ${COMMAND_NAMES.join(', ')}`,
      GLOBAL_USAGE,
    );
  }
  // Help wins over other mistakes on the line: someone asking for help gets it.
  if (help) return { kind: 'help', command: first };
  const spec = COMMANDS[first];
  let strict;
  try {
    strict = parseArgs({
      args: [...argv],
      options: { ...GLOBAL_OPTIONS, ...spec.options },
      strict: true,
      allowPositionals: true,
    });
  } catch (e) {
    throw new UsageError(`${first}: ${firstSentence((e as Error).message)}`, spec.usage);
  }
  const values = strict.values as FlagValues;
  const config = values['config'];
  return {
    kind: 'run',
    command: first,
    values,
    // The command's own arguments: what follows its name.
    positionals: strict.positionals.slice(1),
    json: values['json'] === true,
    config: typeof config === 'string' ? config : undefined,
  };
}
