// What is stored for a tracked task, and what the scanner reports about it. Times are Redis server
// time in ms since the epoch; ages and delays are ms computed against the same clock.

/** A progress report: any JSON value (`{ bytesDone: 123 }`); compared by its JSON text. */
export type ProgressValue =
  number | string | boolean | null | readonly ProgressValue[] | { readonly [key: string]: ProgressValue };

/** The details stored beside a member when it is registered. */
export interface TaskDetails {
  readonly registeredAt: number;
  readonly emitterId: string;
  readonly timeoutMs: number;
  readonly progressTimeoutMs?: number | undefined;
  readonly workerId?: string | undefined;
  readonly host?: string | undefined;
  readonly pid?: number | undefined;
  readonly queue?: string | undefined;
  readonly attributes?: Readonly<Record<string, string | number | boolean>> | undefined;
}

export interface ProgressInfo {
  readonly value: ProgressValue;
  /** When the value last changed (or the task was registered). */
  readonly changedAt: number;
}

/** Why an entry is corrupt. */
export type CorruptReason =
  /** The member is not a valid task id: quarantined. */
  | 'invalid-member'
  /** The score is not a finite number: quarantined. */
  | 'invalid-score'
  /**
   * The score is a deadline further ahead than the longest configured timeout plus slack (the
   * scanner's `maxDeadlineAheadMs`), e.g. 1e15: it would never come due. Quarantined.
   */
  | 'absurd-score'
  /** In the progress set without a heartbeat member: quarantined. */
  | 'orphan-progress'
  /** The member is valid but its details entry is gone: still reported as expired/stalled. */
  | 'details-missing'
  /**
   * The details entry is not the JSON this package writes (or is too long, or holds a NUL, a lone
   * surrogate or a non-finite number): the task is still reported, with `details` undefined.
   */
  | 'details-malformed'
  /** The progress entry cannot be read: the task is still reported. */
  | 'progress-malformed';

/** A corrupt entry met by a scan or listing; logged and counted as well. */
export interface CorruptEntry {
  readonly taskId: string;
  readonly reason: CorruptReason;
  /** Moved to the corrupt hash (see `listCorrupt`) so it cannot block the range; else still in place. */
  readonly quarantined: boolean;
  /** The stored text that could not be read, cut to 500 characters. */
  readonly raw?: string | undefined;
}

/** A task whose heartbeat deadline passed: its process died, froze or lost Redis. */
export interface ExpiredTask {
  readonly kind: 'expired';
  readonly taskId: string;
  /** The deadline it was read with; `remove` deletes it only if this is still its deadline. */
  readonly deadline: number;
  readonly overdueMs: number;
  readonly details: TaskDetails | undefined;
  readonly progress: ProgressInfo | undefined;
}

/** A task whose process still beats but whose progress has not changed for its progress timeout. */
export interface StalledTask {
  readonly kind: 'stalled';
  readonly taskId: string;
  /** Last progress change + progress timeout, as read; `remove` compares against it. */
  readonly progressDeadline: number;
  /** Its heartbeat deadline (still in the future: the process beats). */
  readonly deadline: number;
  readonly details: TaskDetails | undefined;
  readonly progress: ProgressInfo | undefined;
  /** How long progress has not changed, when known. */
  readonly stalledForMs: number | undefined;
}

/** One row of the in-flight listing. */
export interface InFlightTask {
  readonly taskId: string;
  readonly deadline: number;
  /** Negative when the deadline has passed. */
  readonly deadlineInMs: number;
  /** Time since the last beat (deadline − timeout), when the details are readable. */
  readonly heartbeatAgeMs: number | undefined;
  readonly progressDeadline: number | undefined;
  readonly details: TaskDetails | undefined;
  readonly progress: ProgressInfo | undefined;
  readonly progressAgeMs: number | undefined;
  readonly corrupt: CorruptReason | undefined;
}

/** A corrupt member moved out of the sets, with everything that was stored for it (raw). */
export interface QuarantinedEntry {
  readonly member: string;
  readonly reason: string;
  readonly quarantinedAt: number | undefined;
  readonly deadline: string | undefined;
  readonly progressDeadline: string | undefined;
  readonly details: string | undefined;
  readonly progress: string | undefined;
}
