// Typed reads of parsed flags. Every problem is a UsageError that names the flag and shows the
// command's usage, so a typo never reaches a database.
import { parseOperationType, type OperationType } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { parseDuration } from './duration.js';
import { UsageError } from './exit-codes.js';

export function stringFlag(values: FlagValues, name: string): string | undefined {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
}

export function booleanFlag(values: FlagValues, name: string): boolean {
  return values[name] === true;
}

/** An integer flag within [min, max], or `dflt` when absent. */
export function integerFlag(
  spec: CommandSpec,
  values: FlagValues,
  name: string,
  range: { min: number; max: number; dflt: number },
): number {
  const raw = stringFlag(values, name);
  if (raw === undefined) return range.dflt;
  const n = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(n) || n < range.min || n > range.max) {
    throw new UsageError(
      `invalid --${name} ${JSON.stringify(raw.slice(0, 40))}: expected an integer from ${range.min} to ${range.max}`,
      spec.usage,
    );
  }
  return n;
}

/** A `--since`-style duration flag: its text as given and its milliseconds. */
export function durationFlag(
  spec: CommandSpec,
  values: FlagValues,
  name: string,
  dflt?: string,
): { text: string; ms: number } | undefined {
  const text = stringFlag(values, name) ?? dflt;
  if (text === undefined) return undefined;
  try {
    return { text, ms: parseDuration(text, `--${name}`) };
  } catch (e) {
    throw new UsageError((e as Error).message, spec.usage);
  }
}

/** An operation type (flag or positional), with the typed error's message on failure. */
export function operationTypeArg(spec: CommandSpec, raw: string): OperationType {
  try {
    return parseOperationType(raw);
  } catch (e) {
    throw new UsageError(classifyError(e).message, spec.usage);
  }
}

const ERROR_CODE = /^[A-Za-z0-9_.:-]{1,200}$/;

/** An error code filter (`CHECKSUM_MISMATCH`); codes are stable identifiers, so anything else is a typo. */
export function errorCodeFlag(spec: CommandSpec, values: FlagValues): string | undefined {
  const raw = stringFlag(values, 'code');
  if (raw === undefined) return undefined;
  if (!ERROR_CODE.test(raw)) {
    throw new UsageError(
      `invalid --code ${JSON.stringify(raw.slice(0, 40))}: expected an error code such as CHECKSUM_MISMATCH`,
      spec.usage,
    );
  }
  return raw;
}

/** Refuses positional arguments a command does not take. */
export function noPositionals(spec: CommandSpec, positionals: readonly string[]): void {
  if (positionals.length > 0) {
    throw new UsageError(
      `${spec.name} takes no arguments, got ${JSON.stringify(positionals[0]!.slice(0, 40))}`,
      spec.usage,
    );
  }
}
