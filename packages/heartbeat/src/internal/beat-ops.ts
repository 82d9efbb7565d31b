// The beat script's argument encoding and reply decoding (see src/lua/beat.lua).
import type { LostReason } from '../emitter-types.js';
import type { ScriptArg } from './scripts.js';

export interface BeatOp {
  readonly op: 'b' | 'r' | 'u';
  readonly id: string;
  readonly timeoutMs: number;
  /** 0: progress not watched. */
  readonly progressTimeoutMs: number;
  /** 'b': '' when unchanged; 'r': the initial progress JSON. */
  readonly progress: string;
  /** 'r' only: the details JSON object (registeredAt is added by the script). */
  readonly details: string;
}

/** The op that removes a task everywhere. */
export const removeOp = (id: string): BeatOp => ({
  op: 'u',
  id,
  timeoutMs: 0,
  progressTimeoutMs: 0,
  progress: '',
  details: '',
});

export interface BeatReply {
  /** Redis server time of the first chunk, ms. */
  readonly now: number;
  readonly problems: ReadonlyMap<string, LostReason>;
  /**
   * With a health record: 'written', 'unchained' (an earlier chunk did not run), the record of the
   * process that holds the name, or written over an older copy of another process's record.
   */
  readonly health: BeatHealthReply | undefined;
}

/** The health record a beat refreshes: a token for its chain of chunks, then field, ttlMs, info, incarnation. */
export interface BeatHealth {
  readonly token: string;
  readonly args: readonly ScriptArg[];
}

/**
 * One ARGV list per chunk of at most `perScript` ops, in the BEAT script's layout; with `health`,
 * each chunk ends with its place in the chain and the record's arguments (at least one chunk).
 */
export function encodeOps(ops: readonly BeatOp[], perScript: number, health?: BeatHealth): ScriptArg[][] {
  const lists: ScriptArg[][] = [];
  for (let i = 0; i < ops.length || (i === 0 && health !== undefined); i += perScript) {
    const beats: ScriptArg[] = [];
    const progress: ScriptArg[] = [];
    const registrations: ScriptArg[] = [];
    const removals: ScriptArg[] = [];
    for (const o of ops.slice(i, i + perScript)) {
      switch (o.op) {
        case 'b':
          beats.push(o.id, o.timeoutMs);
          if (o.progress !== '') progress.push(o.id, o.progressTimeoutMs, o.progress);
          break;
        case 'r':
          registrations.push(o.id, o.timeoutMs, o.progressTimeoutMs, o.progress, o.details);
          break;
        case 'u':
          removals.push(o.id);
          break;
      }
    }
    lists.push([
      beats.length / 2,
      progress.length / 3,
      registrations.length / 5,
      removals.length,
      ...beats,
      ...progress,
      ...registrations,
      ...removals,
    ]);
  }
  if (health !== undefined)
    lists.forEach((list, k) => list.push(k + 1, lists.length, health.token, ...health.args));
  return lists;
}

/** What a beat did with the health record (see health-write.lua). */
export type BeatHealthReply =
  'written' | 'unchained' | { readonly takenBy: string } | { readonly replaced: string };

/** Reads `{ now, health, id, reason, ... }` from each chunk. Throws on a reply this code did not write. */
export function decodeReplies(replies: readonly unknown[]): BeatReply {
  let now: number | undefined;
  let health: BeatReply['health'];
  const problems = new Map<string, LostReason>();
  for (const reply of replies) {
    if (!Array.isArray(reply) || typeof reply[0] !== 'number') {
      throw new TypeError('unexpected reply from the heartbeat beat script');
    }
    now ??= reply[0];
    const h: unknown = reply[1];
    if (h === 1) health = 'written';
    else if (h === 2) health = 'unchained';
    else if (typeof h === 'string') health = { takenBy: h };
    else if (Array.isArray(h) && typeof h[0] === 'string') health = { replaced: h[0] };
    for (let i = 2; i + 1 < reply.length; i += 2) {
      const id: unknown = reply[i];
      const reason: unknown = reply[i + 1];
      if (typeof id === 'string' && (reason === 'missing' || reason === 'expired')) problems.set(id, reason);
    }
  }
  if (now === undefined) throw new TypeError('empty reply from the heartbeat beat script');
  return { now, problems, health };
}
