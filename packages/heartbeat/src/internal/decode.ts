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
const optional = (v: unknown, type: 'string' | 'number'): boolean => v === undefined || typeof v === type;

function isAttributes(v: unknown): v is Record<string, string | number | boolean> {
  if (!isObj(v)) return false;
  for (const x of Object.values(v)) {
    if (typeof x !== 'string' && typeof x !== 'number' && typeof x !== 'boolean') return false;
  }
  return true;
}

/**
 * The details JSON the emitter writes. Checked by hand rather than with zod: a scan decodes a
 * thousand of these, and this is the part of its time that runs in Node. Unknown fields are dropped.
 */
export function decodeDetails(raw: unknown): Decoded<TaskDetails> {
  const s = str(raw);
  if (s === undefined) return bad('details-missing');
  let v: unknown;
  try {
    v = JSON.parse(s);
  } catch {
    return bad('details-malformed');
  }
  if (
    !isObj(v) ||
    typeof v['registeredAt'] !== 'number' ||
    typeof v['emitterId'] !== 'string' ||
    typeof v['timeoutMs'] !== 'number' ||
    !(v['timeoutMs'] > 0) ||
    !optional(v['progressTimeoutMs'], 'number') ||
    !optional(v['workerId'], 'string') ||
    !optional(v['host'], 'string') ||
    !optional(v['pid'], 'number') ||
    !optional(v['queue'], 'string') ||
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

/** `${changedAtMs}:${json}`; a missing entry is no problem (nothing reported yet). */
export function decodeProgress(raw: unknown): Decoded<ProgressInfo> {
  const s = str(raw);
  if (s === undefined) return ok<ProgressInfo>(undefined);
  const colon = s.indexOf(':');
  const changedAt = colon > 0 ? Number(s.slice(0, colon)) : Number.NaN;
  if (!Number.isFinite(changedAt)) return bad('progress-malformed');
  try {
    return ok({ changedAt, value: JSON.parse(s.slice(colon + 1)) as ProgressValue });
  } catch {
    return bad('progress-malformed');
  }
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
