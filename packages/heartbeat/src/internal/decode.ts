// Reading what Redis returned. Nothing here throws on bad data: it says what is wrong, and the
// scanner reports it.
import { truncate } from '@ccat/errors';
import type {
  CorruptReason,
  ProgressInfo,
  ProgressValue,
  QuarantinedEntry,
  TaskDetails,
} from '../task-info.js';

export interface Decoded<T> {
  readonly value: T | undefined;
  readonly problem: CorruptReason | undefined;
}

const ok = <T>(value: T | undefined): Decoded<T> => ({ value, problem: undefined });
const bad = <T>(problem: CorruptReason): Decoded<T> => ({ value: undefined, problem });

/** A reply element as a string, or undefined for nil. */
export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  return undefined;
}

/** A finite score, or undefined ("inf", garbage). */
export function score(v: unknown): number | undefined {
  const s = str(v);
  if (s === undefined) return undefined;
  const n = Number(s);
  return Number.isFinite(n) ? n : undefined;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Longest details or progress entry read (characters); the emitter writes a few hundred. */
const MAX_ENTRY_CHARS = 16_384;
/** Longest text field of the details (worker id, host, queue, emitter id, an attribute). */
const MAX_FIELD_CHARS = 512;
/** Most attributes in one details entry. */
const MAX_ATTRIBUTES = 64;

// A NUL, or a UTF-16 surrogate without its partner: text PostgreSQL, JSON consumers and terminals
// refuse or mangle. (String.prototype.isWellFormed is not in the ES2023 lib.) With the u flag a
// surrogate pair is one code point, so the class matches only a surrogate that stands alone.
// eslint-disable-next-line no-control-regex -- matching NUL is the point
const ILL_FORMED = /[\u0000\ud800-\udfff]/u;

/** Text that can be passed on as it is: no NUL, no lone surrogate, at most `max` characters. */
function isCleanText(s: string, max = MAX_FIELD_CHARS): boolean {
  return s.length <= max && !ILL_FORMED.test(s);
}

const text = (v: unknown): v is string => typeof v === 'string' && isCleanText(v);
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const optionalText = (v: unknown): boolean => v === undefined || text(v);
const optionalFinite = (v: unknown): boolean => v === undefined || finite(v);

function isAttributes(v: unknown): v is Record<string, string | number | boolean> {
  if (!isObj(v)) return false;
  const entries = Object.entries(v);
  if (entries.length > MAX_ATTRIBUTES) return false;
  for (const [k, x] of entries) {
    if (!isCleanText(k, 128)) return false;
    if (!text(x) && !finite(x) && typeof x !== 'boolean') return false;
  }
  return true;
}

/** Every string (keys too) in a parsed JSON value is clean text and every number finite. */
function isCleanJson(v: unknown, depth = 0): boolean {
  if (depth > 32) return false;
  if (typeof v === 'string') return isCleanText(v, MAX_ENTRY_CHARS);
  if (typeof v === 'number') return Number.isFinite(v);
  if (v === null || typeof v === 'boolean') return true;
  if (Array.isArray(v)) return v.every((x) => isCleanJson(x, depth + 1));
  if (isObj(v)) {
    return Object.entries(v).every(([k, x]) => isCleanText(k, MAX_FIELD_CHARS) && isCleanJson(x, depth + 1));
  }
  return false;
}

/**
 * The details JSON the emitter writes. Checked by hand rather than with zod: a scan decodes a
 * thousand of these, and this is the part of its time that runs in Node. Unknown fields are dropped.
 * Validated where read (DESIGN §5): an entry over MAX_ENTRY_CHARS, a number that is not finite
 * (`1e999` parses as Infinity), a text field with a NUL or a lone surrogate or over MAX_FIELD_CHARS
 * is `details-malformed`, so nothing read here can make a failure record or a recovery fail.
 */
export function decodeDetails(raw: unknown): Decoded<TaskDetails> {
  const s = str(raw);
  if (s === undefined) return bad('details-missing');
  if (s.length > MAX_ENTRY_CHARS) return bad('details-malformed');
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return bad('details-malformed');
  }
  if (
    !isObj(v) ||
    !finite(v['registeredAt']) ||
    !text(v['emitterId']) ||
    !finite(v['timeoutMs']) ||
    !(v['timeoutMs'] > 0) ||
    !optionalFinite(v['progressTimeoutMs']) ||
    !optionalText(v['workerId']) ||
    !optionalText(v['host']) ||
    !optionalFinite(v['pid']) ||
    !optionalText(v['queue']) ||
    (v['attributes'] !== undefined && !isAttributes(v['attributes']))
  ) {
    return bad('details-malformed');
  }
  return ok({
    registeredAt: v['registeredAt'],
    emitterId: v['emitterId'],
    timeoutMs: v['timeoutMs'],
    progressTimeoutMs: v['progressTimeoutMs'] as number | undefined,
    workerId: v['workerId'] as string | undefined,
    host: v['host'] as string | undefined,
    pid: v['pid'] as number | undefined,
    queue: v['queue'] as string | undefined,
    attributes: v['attributes'],
  });
}

/**
 * `${changedAtMs}:${json}`; a missing entry is no problem (nothing reported yet). Over
 * MAX_ENTRY_CHARS, or holding a NUL, a lone surrogate or a non-finite number: `progress-malformed`.
 */
export function decodeProgress(raw: unknown): Decoded<ProgressInfo> {
  const s = str(raw);
  if (s === undefined) return ok<ProgressInfo>(undefined);
  if (s.length > MAX_ENTRY_CHARS) return bad('progress-malformed');
  const colon = s.indexOf(':');
  const changedAt = colon > 0 ? Number(s.slice(0, colon)) : Number.NaN;
  if (!Number.isFinite(changedAt)) return bad('progress-malformed');
  let value: unknown;
  try {
    value = JSON.parse(s.slice(colon + 1));
  } catch {
    return bad('progress-malformed');
  }
  return isCleanJson(value) ? ok({ changedAt, value: value as ProgressValue }) : bad('progress-malformed');
}

/** The raw text of a corrupt entry, cut for logs and reports. */
export function rawSample(raw: unknown): string | undefined {
  const s = str(raw);
  return s === undefined ? undefined : truncate(s, 500);
}

export function decodeQuarantined(member: string, raw: string): QuarantinedEntry {
  let rec: Record<string, unknown> = {};
  try {
    const parsed: unknown = JSON.parse(raw);
    if (parsed !== null && typeof parsed === 'object') rec = parsed as Record<string, unknown>;
  } catch {
    rec = { reason: 'unreadable record' };
  }
  const field = (k: string): string | undefined => (typeof rec[k] === 'string' ? rec[k] : undefined);
  const at = Number(field('quarantinedAt'));
  return {
    member,
    reason: field('reason') ?? 'unknown',
    quarantinedAt: Number.isFinite(at) ? at : undefined,
    deadline: field('deadline'),
    progressDeadline: field('progressDeadline'),
    details: field('details'),
    progress: field('progress'),
  };
}
