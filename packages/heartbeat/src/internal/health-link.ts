// Package-internal: how a HeartbeatEmitter refreshes a ServiceHealthReporter's record inside its own
// beat script (beat.lua), atomically after the beat's writes. Symbols keep these off the public API.
import type { BeatHealthReply } from './beat-ops.js';
import type { ScriptArg } from './scripts.js';

/** Turns the reporter's timer off and returns its two keys (health key, services). */
export const attachToBeats = Symbol('attachToBeats');
/** The record's arguments for the beat script (field, ttlMs, info, incarnation, ownLastSeen); undefined before start and after close. */
export const healthBeatArgs = Symbol('healthBeatArgs');
/** Called with what a beat did with the record and the beat's Redis time (ms). */
export const healthReplied = Symbol('healthReplied');

export interface BeatHealthTarget {
  [attachToBeats](): readonly [string, string];
  [healthBeatArgs](): readonly ScriptArg[] | undefined;
  [healthReplied](health: BeatHealthReply, now: number): void;
}
