// The public shapes of the emitter: what `track` returns, what a beat reports, its options.
import type { CCATDataOperationError } from '@ccat/errors';
import type { Logger } from 'pino';
import type { HeartbeatLostError } from './errors.js';
import type { ServiceHealthReporter } from './health-reporter.js';
import type { HeartbeatOptions } from './options.js';
import type { RedisClient } from './redis-client.js';
import type { ProgressValue } from './task-info.js';

/** Per-task options for `track`; anything left out comes from the emitter's options. */
export interface TrackOptions {
  /** This task's liveness timeout: deadline = last beat + this (default: the emitter's `timeoutMs`); at least 2 × intervalMs. */
  readonly timeoutMs?: number;
  /** This task's progress timeout; `null`: not watched, even when the emitter has a default. */
  readonly progressTimeoutMs?: number | null;
  /** Shown in details and listings. */
  readonly queue?: string;
  /** Up to 20 small facts shown in details and listings. */
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
  /** The initial progress value (default `null`); the progress clock starts at registration. */
  readonly progress?: ProgressValue;
  /**
   * Register with its own round trip now, even with the emitter's `registerOnNextBeat`: for a member
   * Redis lost, whose monitors count the time it is missing (a process back from a freeze must be in
   * Redis again before its bound runs out, not a beat later). With `registerOnNextBeat`, a registration
   * that fails or times out (it may still run in Redis) does not reject: the task stays tracked and its
   * registration rides on the next beat, like any other.
   */
  readonly now?: boolean;
}

/** Why a beat no longer tracks a task. */
export type LostReason = 'missing' | 'expired';

/** A tracked task: its registration's AbortSignal and shortcuts bound to this registration. */
export interface TrackedTask {
  readonly taskId: string;
  /**
   * Aborts with a HeartbeatLostError when a beat finds this member missing or past its deadline. A
   * report, not proof of recovery: check the fenced row; if it is still yours, `track` again.
   */
  readonly signal: AbortSignal;
  /** Records progress for the next beat; false once this registration is no longer tracked. */
  progress(value: ProgressValue): boolean;
  /** Like `emitter.untrack`, unless a newer registration of the same id is live (then a no-op). */
  untrack(): Promise<void>;
}

/** A task a beat found no longer tracked. */
export interface LostTask {
  readonly taskId: string;
  /**
   * `missing`: no member (recovered elsewhere, or Redis lost data); `expired`: deadline passed, or
   * (registerOnNextBeat) the registration could not be sent within the task's timeout.
   */
  readonly reason: LostReason;
  /** Redis time of the beat that found it; undefined for a registration that never reached Redis. */
  readonly serverTime: number | undefined;
  readonly error: HeartbeatLostError;
}

export interface BeatReport {
  /** Redis time of the beat; undefined when there was nothing to send. */
  readonly serverTime: number | undefined;
  /** The beat's Redis round trip in ms; 0 when nothing was sent (serverTime undefined). */
  readonly rttMs: number;
  readonly beaten: number;
  /** Tasks whose registration rode on this beat (registerOnNextBeat). */
  readonly registered: number;
  readonly removed: number;
  readonly lost: readonly LostTask[];
  /** Consecutive failed beats before this one: > 0 right after Redis came back. */
  readonly failedBefore: number;
}

export interface EmitterStats {
  readonly tracked: number;
  readonly beats: number;
  readonly beatFailures: number;
  readonly consecutiveFailures: number;
  readonly lost: number;
  readonly lastRttMs: number | undefined;
}

export type HeartbeatEmitterOptions = HeartbeatOptions & {
  readonly redis: RedisClient;
  readonly logger?: Logger;
  /** Identifies this process in the details; default `${host}:${random}`. */
  readonly emitterId?: string;
  readonly workerId?: string;
  readonly host?: string;
  readonly pid?: number;
  /** Called once per lost task (after its signal aborted). May be async; failures are logged. */
  readonly onLost?: (lost: LostTask) => void | Promise<void>;
  /** Called after every successful beat (metrics: round-trip time). */
  readonly onBeat?: (report: BeatReport) => void;
  /** Called for every failed beat, with the classified error. */
  readonly onError?: (error: CCATDataOperationError) => void;
  /**
   * A service health record to refresh inside every script call of this emitter (its beats, also
   * those with no task, and its registrations and removals), after the call's writes and atomically
   * with them: it lives exactly as long as the beats run in Redis (also when they time out here but
   * still run there) and never vouches for a registration that has not run (a separate refresh could
   * run first, e.g. after a NOSCRIPT resend). A beat split over several calls (more ops than
   * `maxTasksPerScript`) refreshes it with its last call, only when every call before it ran. The
   * reporter's own timer stops; `start()` it as usual (the beats refresh it once started, and
   * not after its `close()`); a takeover found by a beat is handled as its timer would (`onTaken`).
   * It must share this emitter's keyspace (ConfigurationError otherwise). A worker passes its
   * exclusive health record, which the monitors read to judge its rows.
   */
  readonly health?: ServiceHealthReporter;
};
