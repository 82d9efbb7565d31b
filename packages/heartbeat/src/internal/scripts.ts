// Lua scripts defined on the caller's ioredis client with defineCommand. The command name carries a
// digest of the script, so two versions of this package sharing one client never overwrite each
// other's definition; defining the same script twice is a no-op. ioredis sends EVALSHA and falls back
// to EVAL on NOSCRIPT (a restarted Redis has forgotten its scripts).
import { createHash } from 'node:crypto';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis-client.js';
import { HEALTH_BEAT, HEALTH_READ, HEALTH_STOP } from './lua-health.js';
import {
  BEAT,
  COUNTS,
  LIST,
  NEXT,
  REMOVE,
  SCAN_EXPIRED,
  SCAN_STALLED,
  SET_ASIDE_WRONG_TYPES,
} from './lua-tasks.js';

export type ScriptArg = string | number;

interface ScriptSpec {
  readonly lua: string;
  /** null: the caller passes the key count (a variable number of keys). */
  readonly keys: number | null;
  readonly readOnly: boolean;
}

const SPECS = {
  beat: { lua: BEAT, keys: 4, readOnly: false },
  // The scans write: they quarantine corrupt members.
  scanExpired: { lua: SCAN_EXPIRED, keys: 5, readOnly: false },
  scanStalled: { lua: SCAN_STALLED, keys: 5, readOnly: false },
  remove: { lua: REMOVE, keys: 4, readOnly: false },
  list: { lua: LIST, keys: 4, readOnly: true },
  next: { lua: NEXT, keys: 2, readOnly: true },
  counts: { lua: COUNTS, keys: 5, readOnly: true },
  setAsideWrongTypes: { lua: SET_ASIDE_WRONG_TYPES, keys: null, readOnly: false },
  healthBeat: { lua: HEALTH_BEAT, keys: 2, readOnly: false },
  healthStop: { lua: HEALTH_STOP, keys: 2, readOnly: false },
  healthRead: { lua: HEALTH_READ, keys: null, readOnly: true },
} as const satisfies Record<string, ScriptSpec>;

export type ScriptName = keyof typeof SPECS;

const commandNames = new Map<ScriptName, string>(
  (Object.keys(SPECS) as ScriptName[]).map((name) => [
    name,
    `ccatHeartbeat_${name}_${createHash('sha1').update(SPECS[name].lua).digest('hex').slice(0, 12)}`,
  ]),
);

type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

function commandName(name: ScriptName): string {
  const n = commandNames.get(name);
  if (n === undefined) throw new Error(`unknown script ${name}`);
  return n;
}

function ensureDefined(redis: RedisClient, name: ScriptName): string {
  const cmd = commandName(name);
  if (typeof (redis as unknown as Record<string, unknown>)[cmd] !== 'function') {
    const spec: ScriptSpec = SPECS[name];
    redis.defineCommand(cmd, {
      lua: spec.lua,
      ...(spec.keys !== null && { numberOfKeys: spec.keys }),
      readOnly: spec.readOnly,
    });
  }
  return cmd;
}

/** Runs one script: keys first, then arguments. For variable-key scripts the key count goes first. */
export function runScript(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  args: readonly ScriptArg[],
): Promise<unknown> {
  const cmd = ensureDefined(redis, name);
  const fn = (redis as unknown as Record<string, ScriptFn>)[cmd]!;
  const lead: ScriptArg[] = SPECS[name].keys === null ? [keys.length] : [];
  return fn.call(redis, ...lead, ...keys, ...args);
}

/**
 * Runs several calls of one script in a single pipeline: one round trip. Resolves with each call's
 * result; rejects with the first error (the calls are independent, the caller retries them all).
 */
export async function runScriptsPipelined(
  redis: RedisClient,
  name: ScriptName,
  keys: readonly string[],
  argLists: readonly (readonly ScriptArg[])[],
): Promise<unknown[]> {
  if (argLists.length === 1) return [await runScript(redis, name, keys, argLists[0]!)];
  const cmd = ensureDefined(redis, name);
  const pipeline = redis.pipeline() as ChainableCommander & Record<string, (...a: ScriptArg[]) => unknown>;
  for (const args of argLists) pipeline[cmd]!(...keys, ...args);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
