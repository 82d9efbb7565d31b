// What the scanner answers. Times are Redis server time (ms since the epoch).
import type { CorruptEntry, ExpiredTask, InFlightTask, StalledTask } from './task-info.js';

/** Paging for scans and listings. */
export interface PageOptions {
  /** At most this many (default: batchSize for scans, 100 for `list`). */
  readonly limit?: number;
  /** Skip this many first: for members a caller chose to leave in place this pass. */
  readonly offset?: number;
}

export interface ExpiredScan {
  readonly serverTime: number;
  /** How many members are past their deadline in all (this batch may hold fewer). */
  readonly dueTotal: number;
  readonly tasks: readonly ExpiredTask[];
  readonly corrupt: readonly CorruptEntry[];
}

export interface StalledScan {
  readonly serverTime: number;
  readonly dueTotal: number;
  readonly tasks: readonly StalledTask[];
  readonly corrupt: readonly CorruptEntry[];
  /** Progress-stalled members whose heartbeat also expired: left to `scanExpired`. */
  readonly skippedExpired: number;
}

export interface RemoveResult {
  readonly removed: readonly string[];
  /** Changed since read (beat again, progressed, re-registered) or already gone: kept. */
  readonly kept: readonly string[];
}

export interface NextDeadline {
  readonly serverTime: number;
  /** The earliest deadline or progress deadline, ms since the epoch (Redis time). */
  readonly at: number;
  /** Milliseconds from now by Redis time; 0 when already due. */
  readonly inMs: number;
  readonly kind: 'deadline' | 'progress';
}

export interface InFlightList {
  readonly serverTime: number;
  readonly total: number;
  readonly tasks: readonly InFlightTask[];
}

export interface HeartbeatCounts {
  readonly serverTime: number;
  readonly inFlight: number;
  readonly expiredDue: number;
  readonly stalledDue: number;
  readonly corrupt: number;
}

export interface ScannerStats {
  readonly scans: number;
  readonly expiredFound: number;
  readonly stalledFound: number;
  readonly corruptFound: number;
  readonly quarantined: number;
  readonly removed: number;
  readonly kept: number;
}
