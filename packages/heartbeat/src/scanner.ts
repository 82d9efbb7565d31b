// Over 300 lines: every monitor-side read of the deadline sets shares one script registry and decoder.
// Monitor side: range queries over the deadline-scored sets, compare-and-delete, the next deadline.
// Every time here is Redis server time, read inside the scripts.
import { classifyError } from '@ccat/errors';
import type { Logger } from 'pino';
import type { z } from 'zod';
import {
  decodeDetails,
  decodeProgress,
  decodeQuarantined,
  rawSample,
  score,
  str,
} from './internal/decode.js';
import { keysFor } from './internal/keys-for.js';
import { parseOptions } from './internal/parse-options.js';
import { runScript, type ScriptArg, type ScriptName } from './internal/scripts.js';
import { silentLogger } from './internal/silent-logger.js';
import type { HeartbeatKeys } from './keys.js';
import { scannerOptionsSchema, type ScannerOptions } from './options.js';
import type { RedisClient } from './redis-client.js';
import { isValidTaskId } from './task-id.js';
import type {
  ExpiredScan,
  HeartbeatCounts,
  InFlightList,
  NextDeadline,
  PageOptions,
  RemoveResult,
  ScannerStats,
  StalledScan,
} from './scan-results.js';
import type {
  CorruptEntry,
  CorruptReason,
  ExpiredTask,
  InFlightTask,
  QuarantinedEntry,
  StalledTask,
} from './task-info.js';

export type HeartbeatScannerOptions = ScannerOptions & {
  readonly redis: RedisClient;
  readonly logger?: Logger;
};

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(str(v)));

const REASONS: ReadonlySet<string> = new Set<CorruptReason>([
  'invalid-member',
  'invalid-score',
  'absurd-score',
  'orphan-progress',
]);

/** The script's flag when it set one, else what the TypeScript side found wrong. */
function whyCorrupt(flag: string, taskId: string): CorruptReason {
  if (REASONS.has(flag)) return flag as CorruptReason;
  return isValidTaskId(taskId) ? 'invalid-score' : 'invalid-member';
}

/**
 * Finds expired and progress-stalled tasks, lists in-flight tasks, removes recovered ones with
 * compare-and-delete, and says when the next deadline falls. Holds no timers: no start/close.
 */
export class HeartbeatScanner {
  readonly #redis: RedisClient;
  readonly #log: Logger;
  readonly #opts: z.output<typeof scannerOptionsSchema>;
  readonly #keys: HeartbeatKeys;
  readonly #taskKeys: readonly string[];
  #stats = {
    scans: 0,
    expiredFound: 0,
    stalledFound: 0,
    corruptFound: 0,
    quarantined: 0,
    removed: 0,
    kept: 0,
  };

  constructor(options: HeartbeatScannerOptions) {
    const { redis, logger, ...config } = options;
    this.#opts = parseOptions(scannerOptionsSchema, config, 'scanner');
    this.#redis = redis;
    this.#log = (logger ?? silentLogger()).child({ component: 'heartbeat-scanner' });
    this.#keys = keysFor(this.#opts.keyPrefix, this.#opts.hashTag);
    const k = this.#keys;
    this.#taskKeys = [k.deadlines, k.progressDeadlines, k.details, k.progress, k.corrupt];
  }

  get keys(): HeartbeatKeys {
    return this.#keys;
  }

  /**
   * Members whose deadline passed (by Redis time), earliest first, at most `limit`, with details.
   * Corrupt members are quarantined and listed in `corrupt`; a valid member with unreadable details
   * is still returned (its id says what to recover) and listed in `corrupt` too.
   */
  async scanExpired(page: PageOptions = {}): Promise<ExpiredScan> {
    const reply = await this.#run('scanExpired', this.#taskKeys, this.#page(page));
    const serverTime = num(reply[0]);
    const tasks: ExpiredTask[] = [];
    const corrupt: CorruptEntry[] = [];
    for (let i = 2; i + 4 < reply.length; i += 5) {
      const taskId = str(reply[i]) ?? '';
      const flag = str(reply[i + 4]) ?? '';
      const deadline = score(reply[i + 1]);
      if (flag !== '' || deadline === undefined || !isValidTaskId(taskId)) {
        corrupt.push(this.#corrupt(taskId, whyCorrupt(flag, taskId), flag !== '', reply[i + 1]));
        continue;
      }
      const details = decodeDetails(reply[i + 2]);
      const progress = decodeProgress(reply[i + 3]);
      if (details.problem) corrupt.push(this.#corrupt(taskId, details.problem, false, reply[i + 2]));
      if (progress.problem) corrupt.push(this.#corrupt(taskId, progress.problem, false, reply[i + 3]));
      tasks.push({
        kind: 'expired',
        taskId,
        deadline,
        overdueMs: serverTime - deadline,
        details: details.value,
        progress: progress.value,
      });
    }
    this.#stats.scans++;
    this.#stats.expiredFound += tasks.length;
    return { serverTime, dueTotal: num(reply[1]), tasks, corrupt };
  }

  /**
   * Members whose progress has not changed for their progress timeout while their heartbeat is still
   * alive (hung I/O). Found by a range query on the progress-deadline set.
   */
  async scanStalled(page: PageOptions = {}): Promise<StalledScan> {
    const reply = await this.#run('scanStalled', this.#taskKeys, this.#page(page));
    const serverTime = num(reply[0]);
    const tasks: StalledTask[] = [];
    const corrupt: CorruptEntry[] = [];
    let skippedExpired = 0;
    for (let i = 2; i + 5 < reply.length; i += 6) {
      const taskId = str(reply[i]) ?? '';
      const flag = str(reply[i + 5]) ?? '';
      const progressDeadline = score(reply[i + 1]);
      const deadline = score(reply[i + 2]);
      if (flag !== '' || progressDeadline === undefined || deadline === undefined || !isValidTaskId(taskId)) {
        corrupt.push(this.#corrupt(taskId, whyCorrupt(flag, taskId), flag !== '', reply[i + 1]));
        continue;
      }
      if (deadline <= serverTime) {
        skippedExpired++;
        continue;
      }
      const details = decodeDetails(reply[i + 3]);
      const progress = decodeProgress(reply[i + 4]);
      if (details.problem) corrupt.push(this.#corrupt(taskId, details.problem, false, reply[i + 3]));
      if (progress.problem) corrupt.push(this.#corrupt(taskId, progress.problem, false, reply[i + 4]));
      tasks.push({
        kind: 'stalled',
        taskId,
        progressDeadline,
        deadline,
        details: details.value,
        progress: progress.value,
        stalledForMs: progress.value === undefined ? undefined : serverTime - progress.value.changedAt,
      });
    }
    this.#stats.scans++;
    this.#stats.stalledFound += tasks.length;
    return { serverTime, dueTotal: num(reply[1]), tasks, corrupt, skippedExpired };
  }

  /**
   * Compare-and-delete, in one round trip: each task is removed (member, details, progress) only if
   * the score it was read with is still stored — its deadline for an expired task, its progress
   * deadline for a stalled one. A member that beat again, progressed or was re-registered is kept.
   */
  async remove(tasks: readonly (ExpiredTask | StalledTask)[]): Promise<RemoveResult> {
    if (tasks.length === 0) return { removed: [], kept: [] };
    const args: ScriptArg[] = [tasks.length];
    for (const t of tasks) {
      args.push(
        t.taskId,
        t.kind === 'expired' ? 'd' : 'p',
        String(t.kind === 'expired' ? t.deadline : t.progressDeadline),
      );
    }
    const reply = await this.#run('remove', this.#taskKeys.slice(0, 4), args);
    const removed: string[] = [];
    const kept: string[] = [];
    tasks.forEach((t, i) => (reply[i] === 1 ? removed : kept).push(t.taskId));
    this.#stats.removed += removed.length;
    this.#stats.kept += kept.length;
    if (kept.length > 0) this.#log.debug({ kept: kept.length }, 'heartbeat members changed since read: kept');
    return { removed, kept };
  }

  /**
   * The earliest deadline or progress deadline, as "ms from now" by Redis time; undefined when none.
   * Members in `skip` (e.g. ones the caller backs off from) are passed over; one round trip reads
   * `skip.size + 1` entries of each set.
   */
  async nextDeadline(skip: ReadonlySet<string> = new Set()): Promise<NextDeadline | undefined> {
    const reply = await this.#run('next', this.#taskKeys.slice(0, 2), [Math.min(skip.size, 100_000)]);
    const serverTime = num(reply[0]);
    const first = (entries: unknown): number | undefined => {
      if (!Array.isArray(entries)) return undefined;
      for (let i = 0; i + 1 < entries.length; i += 2) {
        if (!skip.has(str(entries[i]) ?? '')) return score(entries[i + 1]);
      }
      return undefined;
    };
    const d = first(reply[1]);
    const p = first(reply[2]);
    if (d === undefined && p === undefined) return undefined;
    const [at, kind] =
      p === undefined || (d !== undefined && d <= p) ? [d!, 'deadline' as const] : [p, 'progress' as const];
    return { serverTime, at, inMs: Math.max(0, at - serverTime), kind };
  }

  /** A page of in-flight tasks by deadline, with heartbeat age and progress (admin CLI). Read-only. */
  async list(page: PageOptions = {}): Promise<InFlightList> {
    const offset = Math.max(0, Math.floor(page.offset ?? 0));
    const limit = Math.max(1, Math.min(10_000, Math.floor(page.limit ?? 100)));
    const reply = await this.#run('list', this.#taskKeys.slice(0, 4), [offset, offset + limit - 1]);
    const serverTime = num(reply[0]);
    const tasks: InFlightTask[] = [];
    for (let i = 2; i + 4 < reply.length; i += 5) {
      const taskId = str(reply[i]) ?? '';
      const deadline = score(reply[i + 1]) ?? Number.NaN;
      const details = decodeDetails(reply[i + 3]);
      const progress = decodeProgress(reply[i + 4]);
      const corrupt: CorruptReason | undefined = !isValidTaskId(taskId)
        ? 'invalid-member'
        : !Number.isFinite(deadline)
          ? 'invalid-score'
          : (details.problem ?? progress.problem);
      tasks.push({
        taskId,
        deadline,
        deadlineInMs: deadline - serverTime,
        heartbeatAgeMs: details.value ? serverTime - (deadline - details.value.timeoutMs) : undefined,
        progressDeadline: score(reply[i + 2]),
        details: details.value,
        progress: progress.value,
        progressAgeMs: progress.value ? serverTime - progress.value.changedAt : undefined,
        corrupt,
      });
    }
    return { serverTime, total: num(reply[1]), tasks };
  }

  /** Gauges for metrics: in flight, due now, corrupt. */
  async counts(): Promise<HeartbeatCounts> {
    const r = await this.#run('counts', this.#taskKeys, []);
    return {
      serverTime: num(r[0]),
      inFlight: num(r[1]),
      expiredDue: num(r[2]),
      stalledDue: num(r[3]),
      corrupt: num(r[4]),
    };
  }

  /** Corrupt members the scans moved aside, with what was stored for them. */
  async listCorrupt(): Promise<QuarantinedEntry[]> {
    try {
      const all = await this.#redis.hgetall(this.#keys.corrupt);
      return Object.entries(all).map(([member, raw]) => decodeQuarantined(member, raw));
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Deletes quarantined records (all, or the given members); returns how many went. */
  async purgeCorrupt(members?: readonly string[]): Promise<number> {
    try {
      if (members === undefined) {
        const n = await this.#redis.hlen(this.#keys.corrupt);
        await this.#redis.unlink(this.#keys.corrupt);
        return n;
      }
      return members.length === 0 ? 0 : await this.#redis.hdel(this.#keys.corrupt, ...members);
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Counters since construction (scans, found, corrupt, quarantined, removed, kept). */
  stats(): ScannerStats {
    return { ...this.#stats };
  }

  #page(page: PageOptions): ScriptArg[] {
    const limit = Math.max(1, Math.min(10_000, Math.floor(page.limit ?? this.#opts.batchSize)));
    return [Math.max(0, Math.floor(page.offset ?? 0)), limit, this.#opts.maxDeadlineAheadMs ?? ''];
  }

  #corrupt(taskId: string, reason: CorruptReason, quarantined: boolean, raw: unknown): CorruptEntry {
    this.#stats.corruptFound++;
    if (quarantined) this.#stats.quarantined++;
    const entry: CorruptEntry = { taskId, reason, quarantined, raw: rawSample(raw) };
    this.#log.warn({ taskId: taskId.slice(0, 300), reason, quarantined }, 'corrupt heartbeat entry');
    return entry;
  }

  async #run(name: ScriptName, keys: readonly string[], args: readonly ScriptArg[]): Promise<unknown[]> {
    try {
      const reply = await runScript(this.#redis, name, keys, args);
      if (!Array.isArray(reply)) throw new TypeError(`unexpected reply from heartbeat script ${name}`);
      return reply as unknown[];
    } catch (e) {
      if (name !== 'setAsideWrongTypes' && /WRONGTYPE/.test(e instanceof Error ? e.message : String(e)))
        await this.setAsideWrongTypes().catch(() => undefined);
      throw classifyError(e);
    }
  }

  /**
   * Moves aside (renames to `<key>:wrong-type:<ms>`, same hash tag, nothing deleted) each heartbeat
   * key whose type is not the sorted set or hash this package writes: such a key makes every beat and
   * scan fail with WRONGTYPE, so no task could be found or recovered. Run on its own after a script
   * failed with WRONGTYPE (that call still throws; the next one finds fresh keys: live tasks
   * re-register on their next beat, dead ones are left to reconciliation). Logs an error per key
   * moved. Returns the keys moved; throws the classified Redis error.
   */
  async setAsideWrongTypes(): Promise<{ key: string; foundType: string; movedTo: string }[]> {
    const k = this.#keys;
    const expected: [string, string][] = [
      [k.deadlines, 'zset'],
      [k.progressDeadlines, 'zset'],
      [k.details, 'hash'],
      [k.progress, 'hash'],
      [k.corrupt, 'hash'],
    ];
    const reply = await this.#run(
      'setAsideWrongTypes',
      expected.map(([key]) => key),
      expected.map(([, type]) => type),
    );
    const moved: { key: string; foundType: string; movedTo: string }[] = [];
    for (let i = 0; i + 2 < reply.length; i += 3) {
      const entry = {
        key: str(reply[i]) ?? '',
        foundType: str(reply[i + 1]) ?? '',
        movedTo: str(reply[i + 2]) ?? '',
      };
      moved.push(entry);
      this.#log.error(
        entry,
        'heartbeat key of the wrong type moved aside; live tasks re-register on their next beat, dead ones are reconciled',
      );
    }
    return moved;
  }
}
