// Validation of what `track` and `progress` are given. Bad input is the caller's bug: ValidationError.
// Checked by hand rather than with zod: a worker process may register thousands of tasks at once.
import { ValidationError } from '@ccat/errors';
import type { ProgressValue } from '../task-info.js';
import { describeValue } from './parse-options.js';

const MAX_PROGRESS_JSON = 1024;
const MAX_DETAILS_JSON = 4096;
const WEEK = 7 * 24 * 3_600_000;
const KNOWN = new Set(['timeoutMs', 'progressTimeoutMs', 'queue', 'attributes', 'progress', 'now']);

export interface ResolvedTrack {
  readonly timeoutMs: number;
  /** 0: progress not watched. */
  readonly progressTimeoutMs: number;
  readonly queue: string | undefined;
  readonly attributes: Readonly<Record<string, string | number | boolean>> | undefined;
  readonly progressJson: string;
}

/** JSON text of a progress value; ValidationError when it is not JSON or longer than 1 KiB. */
export function encodeProgress(value: ProgressValue | undefined): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (e) {
    throw new ValidationError('progress is not JSON-serializable', { code: 'INVALID_PROGRESS', cause: e });
  }
  if (json === undefined || json.length > MAX_PROGRESS_JSON) {
    throw new ValidationError(`progress must be a JSON value of at most ${MAX_PROGRESS_JSON} characters`, {
      code: 'INVALID_PROGRESS',
      context: { length: json?.length ?? null },
    });
  }
  return json;
}

function problem(path: string, expected: string, got: unknown): never {
  throw new ValidationError(
    `invalid track options: track.${path}: expected ${expected}, got ${describeValue(got)}`,
    {
      code: 'INVALID_TRACK_OPTIONS',
      context: { problems: [{ path: `track.${path}`, expected, got: describeValue(got) }] },
    },
  );
}

function timeout(v: unknown, path: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) return problem(path, 'an integer number of ms', v);
  if (v < min || v > WEEK) return problem(path, `${min} to ${WEEK} ms (at least 2 * intervalMs)`, v);
  return v;
}

function attributes(v: unknown): Record<string, string | number | boolean> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return problem('attributes', 'an object', v);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > 20) return problem('attributes', 'at most 20 attributes', entries.length);
  for (const [k, x] of entries) {
    const ok =
      k.length <= 64 &&
      (typeof x === 'number' || typeof x === 'boolean' || (typeof x === 'string' && x.length <= 500));
    if (!ok) return problem(`attributes.${k.slice(0, 64)}`, 'a string (<= 500), number or boolean', x);
  }
  return v as Record<string, string | number | boolean>;
}

/** Per-task options over the emitter's defaults; timeouts must leave room for two beats. */
export function resolveTrack(
  input: unknown,
  defaults: {
    readonly timeoutMs: number;
    readonly progressTimeoutMs?: number | undefined;
    readonly intervalMs: number;
  },
): ResolvedTrack {
  if (typeof input !== 'object' || input === null) return problem('', 'an options object', input);
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) problem(key, 'no such option', 'a value');
  const min = 2 * defaults.intervalMs;
  const queue = o['queue'];
  if (queue !== undefined && (typeof queue !== 'string' || queue.length === 0 || queue.length > 200)) {
    problem('queue', 'a string of 1 to 200 characters', queue);
  }
  const pt = o['progressTimeoutMs'];
  if (o['now'] !== undefined && typeof o['now'] !== 'boolean') problem('now', 'a boolean', o['now']);
  return {
    timeoutMs: timeout(o['timeoutMs'], 'timeoutMs', min) ?? defaults.timeoutMs,
    progressTimeoutMs:
      pt === null ? 0 : (timeout(pt, 'progressTimeoutMs', min) ?? defaults.progressTimeoutMs ?? 0),
    queue,
    attributes: attributes(o['attributes']),
    progressJson: encodeProgress(o['progress'] as ProgressValue | undefined),
  };
}

/** The details JSON stored at registration; ValidationError when it grows past 4 KiB. */
export function encodeDetails(fields: Record<string, unknown>): string {
  const json = JSON.stringify({ v: 1, ...fields });
  if (json.length > MAX_DETAILS_JSON) {
    throw new ValidationError(`task details must stay under ${MAX_DETAILS_JSON} characters`, {
      code: 'INVALID_DETAILS',
      context: { length: json.length },
    });
  }
  return json;
}
