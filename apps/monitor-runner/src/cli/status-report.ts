// The shape of `status`'s result: the JSON document as printed with --json, and the input of the
// text renderer. Keys are stable: scripts read them.
import type { OperationStatus, OperationType } from '@ccat/db';
import type { ProgressValue } from '@ccat/heartbeat';

export type StatusCounts = Record<OperationStatus | 'total', number>;

export interface TaskRow {
  readonly taskId: string;
  readonly operationType: OperationType | null;
  readonly operationId: string | null;
  readonly attempt: number | null;
  readonly workerId: string | null;
  readonly host: string | null;
  readonly pid: number | null;
  readonly progress: ProgressValue | null;
  readonly progressAgeMs: number | null;
}

export interface InFlightRow extends TaskRow {
  readonly heartbeatAgeMs: number | null;
  /** Negative when the deadline has passed. */
  readonly deadlineInMs: number | null;
  readonly corrupt: string | null;
}

export interface StalledRow extends TaskRow {
  /** `expired`: no beat before the deadline; `progress_stalled`: beats, but progress stopped. */
  readonly kind: 'expired' | 'progress_stalled';
  /** How far past the heartbeat deadline (expired) or since progress last changed (progress_stalled). */
  readonly forMs: number | null;
}

export interface StatusReport {
  readonly command: 'status';
  readonly counts: {
    readonly byType: readonly ({ readonly type: OperationType } & StatusCounts)[];
    readonly all: StatusCounts;
  } | null;
  readonly inFlight: { readonly total: number; readonly tasks: readonly InFlightRow[] } | null;
  readonly stalledNow: {
    readonly expiredTotal: number;
    readonly progressStalledTotal: number;
    readonly tasks: readonly StalledRow[];
    /** Entries the scans found unreadable (moved aside by the scanner, as the monitor's scans do). */
    readonly corrupt: number;
  } | null;
  readonly services:
    | readonly {
        readonly serviceType: string;
        readonly serviceName: string;
        readonly status: string;
        readonly lastSeenAgoMs: number;
        readonly host: string | null;
        readonly pid: number | null;
      }[]
    | null;
  /**
   * Outbox notifications not delivered, by level (only levels that have some): `pending` rows were
   * tried without success and are being retried (an ERROR is retried for as long as it takes) or
   * are due and not yet taken; `failed` rows were given up. `oldestAt` is the oldest one's creation
   * time (ISO). Null when PostgreSQL was unreachable.
   */
  readonly notifications: {
    readonly undelivered: readonly {
      readonly level: string;
      readonly pending: number;
      readonly failed: number;
      readonly oldestAt: string;
      readonly oldestAgeMs: number;
    }[];
  } | null;
  readonly unavailable: readonly {
    readonly service: string;
    readonly where: string;
    readonly reason: string;
  }[];
}
