// The one registry of this package's Lua scripts: files in src/lua (shared parts as includes), read
// once and defined on the caller's ioredis client with defineCommand. The command name carries a
// digest of the script, so two versions of this package sharing one client never overwrite each
// other's definition; defining the same script twice is a no-op. ioredis sends EVALSHA and falls back
// to EVAL on NOSCRIPT (a restarted Redis has forgotten its scripts).
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { ChainableCommander } from 'ioredis';
import type { RedisClient } from '../redis-client.js';

export type ScriptArg = string | number;

/** Files in src/lua (copied to dist/lua by the build) a script is prefixed with, in this order. */
type Include = 'prelude' | 'task-keys' | 'quarantine' | 'health-write';

interface ScriptSpec {
  /** Its file in src/lua, without `.lua`. */
  readonly file: string;
  readonly includes: readonly Include[];
  /** null: the caller passes the key count (a variable number of keys). */
  readonly keys: number | null;
  readonly readOnly: boolean;
}

const TASK: readonly Include[] = ['prelude', 'task-keys'];

const SPECS = {
  // 4 task keys, or 7 with the health record the beat refreshes (see beat.lua).
  beat: { file: 'beat', includes: [...TASK, 'health-write'], keys: null, readOnly: false },
  // The scans write: they quarantine corrupt members.
  scanExpired: { file: 'scan-expired', includes: [...TASK, 'quarantine'], keys: 5, readOnly: false },
  scanStalled: { file: 'scan-stalled', includes: [...TASK, 'quarantine'], keys: 5, readOnly: false },
  remove: { file: 'remove', includes: TASK, keys: 4, readOnly: false },
  list: { file: 'list', includes: TASK, keys: 4, readOnly: true },
  next: { file: 'next', includes: TASK, keys: 2, readOnly: true },
  counts: { file: 'counts', includes: TASK, keys: 5, readOnly: true },
  setAsideWrongTypes: { file: 'set-aside-wrong-types', includes: ['prelude'], keys: null, readOnly: false },
  healthBeat: { file: 'health-beat', includes: ['prelude', 'health-write'], keys: 2, readOnly: false },
  healthStop: { file: 'health-stop', includes: ['prelude'], keys: 2, readOnly: false },
  healthRead: { file: 'health-read', includes: ['prelude'], keys: null, readOnly: true },
  releaseLease: { file: 'release-lease', includes: [], keys: 1, readOnly: false },
} as const satisfies Record<string, ScriptSpec>;

export type ScriptName = keyof typeof SPECS;

const LUA_DIR = new URL('../lua/', import.meta.url);
const readLua = (file: string): string => readFileSync(new URL(`${file}.lua`, LUA_DIR), 'utf8');

/** Each script's source (includes first) and command name, read from its files once, on first use. */
let loaded: Map<ScriptName, { readonly lua: string; readonly command: string }> | undefined;

function load(name: ScriptName): { readonly lua: string; readonly command: string } {
  loaded ??= new Map(
    (Object.keys(SPECS) as ScriptName[]).map((n) => {
      const spec: ScriptSpec = SPECS[n];
      const lua = [...spec.includes, spec.file].map(readLua).join('\n');
      const digest = createHash('sha1').update(lua).digest('hex').slice(0, 12);
      return [n, { lua, command: `ccatHeartbeat_${n}_${digest}` }];
    }),
  );
  const script = loaded.get(name);
  if (script === undefined) throw new Error(`unknown script ${name}`);
  return script;
}

type ScriptFn = (...args: ScriptArg[]) => Promise<unknown>;

function ensureDefined(redis: RedisClient, name: ScriptName): string {
  const { lua, command: cmd } = load(name);
  if (typeof (redis as unknown as Record<string, unknown>)[cmd] !== 'function') {
    const spec: ScriptSpec = SPECS[name];
    redis.defineCommand(cmd, {
      lua,
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
  const lead: ScriptArg[] = SPECS[name].keys === null ? [keys.length] : [];
  for (const args of argLists) pipeline[cmd]!(...lead, ...keys, ...args);
  const results = (await pipeline.exec()) ?? [];
  return results.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}
