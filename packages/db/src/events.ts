import type { AnyEventKind, NotificationLevel } from '@ccat/errors';

/** What an operation_events row says beyond the operation and attempt (filled in by the transition). */
export interface EventDetails {
  /**
   * The decision recorded (DESIGN §3): @ccat/errors `EVENT_KINDS`, or another service's own. Defaults
   * to the transition's own kind (e.g. `retry_scheduled` for resetForRetry).
   */
  readonly event?: AnyEventKind;
  readonly errorCode?: string;
  readonly errorClass?: string;
  readonly message?: string;
  readonly retryable?: boolean;
  readonly context?: Readonly<Record<string, unknown>>;
  readonly workerId?: string;
}

/** An outbox row written in the same statement as the state change it reports (DESIGN §7). */
export interface NotificationInput {
  readonly level: NotificationLevel;
  readonly eventKind: string;
  readonly subject: string;
  readonly body: string;
  readonly context?: Readonly<Record<string, unknown>>;
  /** Alike events share it (event kind + operation type + error code); they are digested. */
  readonly dedupKey?: string;
}

/** The error facts a failing transition records on the row and in its event. */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly errorClass?: string;
  readonly retryable?: boolean;
  readonly context?: Readonly<Record<string, unknown>>;
}

/** Optional same-transaction writes of a transition. */
export interface TransitionOptions {
  /** Write an operation_events row (the transition fills in type, id, attempt and defaults). */
  readonly event?: EventDetails;
  /** Write an outbox notification. */
  readonly notification?: NotificationInput;
}
