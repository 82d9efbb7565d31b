// Parsers for commander options and arguments. Each throws UsageError (exit 2) with a one-line
// message naming the flag, so a typo never reaches a database.
import { Option } from '@commander-js/extra-typings';
import { parseOperationId, parseOperationType, type OperationType } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { UsageError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** Ten years: a window longer than the telescope's life is a typo, not a question. */
const MAX_MS = 3650 * UNIT_MS.d;
const WHOLE = /^(?:\d{1,9}(?:ms|s|m|h|d|w))+$/;
const PART = /(\d{1,9})(ms|s|m|h|d|w)/g;

/** A window as written (`24h`) and in milliseconds. */
export interface Since {
  readonly text: string;
  readonly ms: number;
}

/**
 * Parses `30m`, `24h`, `7d`, `2w`, `1h30m` (units ms, s, m, h, d, w). Hand-written, not `ms` or
 * parse-duration: those also accept `1.5h`, `1 h` and a bare `24`, which here are typos. Throws a
 * UsageError naming --since for anything else, for zero, and for more than ten years.
 */
export function parseDuration(text: string): Since {
  const flag = '--since';
  const shown = JSON.stringify(text.slice(0, 40));
  if (!WHOLE.test(text)) {
    throw new UsageError(
      `invalid duration ${shown} for ${flag}: expected a number and a unit, like 30m, 24h or 7d (units: ms, s, m, h, d, w)`,
    );
  }
  let ms = 0;
  for (const [, n, unit] of text.matchAll(PART)) ms += Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (ms <= 0) throw new UsageError(`invalid duration ${shown} for ${flag}: must be longer than zero`);
  if (ms > MAX_MS) throw new UsageError(`invalid duration ${shown} for ${flag}: at most 3650d`);
  return { text, ms };
}

/** `--since D`, 24h unless given: the window of `report` and `failures`. */
export const sinceOption = () =>
  new Option('--since <D>', 'window length, e.g. 30m, 24h, 7d')
    .argParser(parseDuration)
    .default(parseDuration('24h'), '24h');

/** A parser of integers in [min, max] for the option `--name`. */
export function integerIn(name: string, min: number, max: number): (raw: string) => number {
  return (raw) => {
    const n = /^\d{1,9}$/.test(raw) ? Number(raw) : Number.NaN;
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new UsageError(
        `invalid --${name} ${JSON.stringify(raw.slice(0, 40))}: expected an integer from ${min} to ${max}`,
      );
    }
    return n;
  };
}

/** An operation type (flag or argument), with @ccat/db's message on failure. */
export function operationType(raw: string): OperationType {
  try {
    return parseOperationType(raw);
  } catch (e) {
    throw new UsageError(classifyError(e).message);
  }
}

/** An operation id (a positive 64-bit integer, as text). */
export function operationId(raw: string): string {
  try {
    return parseOperationId(raw);
  } catch (e) {
    throw new UsageError(classifyError(e).message);
  }
}

const ERROR_CODE = /^[A-Za-z0-9_.:-]{1,200}$/;

/** An error code filter (`CHECKSUM_MISMATCH`); codes are stable identifiers, so anything else is a typo. */
export function errorCode(raw: string): string {
  if (!ERROR_CODE.test(raw)) {
    throw new UsageError(
      `invalid --code ${JSON.stringify(raw.slice(0, 40))}: expected an error code such as CHECKSUM_MISMATCH`,
    );
  }
  return raw;
}
