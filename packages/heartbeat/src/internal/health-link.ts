// Package-internal: how a HeartbeatEmitter refreshes a ServiceHealthReporter's record inside its own
// beat script (beat.lua), atomically after the beat's writes. Symbols keep these off the public API.
import type { ScriptArg } from './scripts.js';

/** Turns the reporter's timer off and returns its two keys (health key, services). */
export const attachToBeats = Symbol('attachToBeats');
/** The record's arguments for the beat script (field, ttlMs, info, incarnation); undefined before start and after close. */
export const healthBeatArgs = Symbol('healthBeatArgs');
/** Called with the record of another process when the beat found the name taken. */
export const healthTakenBy = Symbol('healthTakenBy');

export interface BeatHealthTarget {
  [attachToBeats](): readonly [string, string];
  [healthBeatArgs](): readonly ScriptArg[] | undefined;
  [healthTakenBy](record: string): void;
}
