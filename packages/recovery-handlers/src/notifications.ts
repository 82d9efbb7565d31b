// What a human reads. Built from facts only; the notifier escapes and redacts on delivery.
import { MAX_MESSAGE, type NotificationInput } from '@ccat/db';
import {
  adviceFor,
  EVENT_CATALOGUE,
  eventLevel,
  formatDuration,
  truncate,
  type EventKind,
} from '@ccat/errors';
import type { TaskRef } from './handler.js';

/** The kinds a recovery decision notifies (their level and text are in @ccat/errors `EVENT_CATALOGUE`). */
export type RecoveryEventKind = Extract<
  EventKind,
  'permanent_failure' | 'stall_exhausted' | 'stall_recovered' | 'retry_scheduled'
>;

export interface NotificationFacts {
  readonly kind: RecoveryEventKind;
  readonly ref: TaskRef;
  readonly errorCode: string;
  readonly errorClass?: string;
  readonly errorMessage: string;
  readonly retryCount: number;
  readonly maxRetries: number;
  readonly workerId?: string;
  readonly delayMs?: number;
  readonly detail?: string;
}

/** Alike events share a key (event kind + operation type + error code) and are digested together. */
export function dedupKey(kind: RecoveryEventKind, operationType: string, errorCode: string): string {
  return `${kind}:${operationType}:${errorCode}`;
}

/** What happened, per kind (built only for the kind at hand: a batch of stalls builds thousands). */
const HEADLINE: Record<RecoveryEventKind, (what: string, f: NotificationFacts) => string> = {
  permanent_failure: (what, f) => `${what} FAILED: ${f.errorCode}`,
  stall_exhausted: (what, f) =>
    `${what} FAILED: ${f.errorCode === 'POISON_OPERATION' ? 'crashed every worker process that ran it alone' : 'stalled too often'}`,
  stall_recovered: (what) => `${what} stalled and was reset for retry`,
  retry_scheduled: (what, f) => `${what} will be retried (${f.errorCode})`,
};

/** What was done, per kind. */
const DONE: Record<RecoveryEventKind, (f: NotificationFacts) => string> = {
  permanent_failure: () => EVENT_CATALOGUE.permanent_failure.action,
  stall_exhausted: (f) => `${EVENT_CATALOGUE.permanent_failure.action} Code: ${f.errorCode}.`,
  stall_recovered: (f) => reset(f),
  retry_scheduled: (f) => reset(f),
};

const reset = (f: NotificationFacts): string =>
  `Reset to PENDING as attempt ${f.ref.attempt + 1}; it runs again${f.delayMs ? ` in about ${formatDuration(f.delayMs)}` : ' now'}.`;

/**
 * The outbox notification for a recovery decision: the subject says what happened; the context
 * carries the facts and this decision's `action` and `advice` (shown by every channel in place of the
 * catalogue's generic text); the body holds the error message and the retries used.
 */
export function buildNotification(f: NotificationFacts): NotificationInput {
  const { ref } = f;
  const what = `${ref.type} ${ref.id}`;
  const todo =
    f.kind === 'permanent_failure' || f.kind === 'stall_exhausted'
      ? `${adviceFor(f.errorCode)} Then: ccat-recovery retry ${ref.type} ${ref.id}`
      : 'Nothing, unless this repeats.';
  // What was done and what to do travel as the context's `action` and `advice`: every channel shows
  // them once, in the catalogue's place, instead of the catalogue's generic text (issue 14: one
  // catalogue, not a second wording of it in the body). The worker is the context's `workerId`.
  const lines = [
    `What: ${what}, attempt ${ref.attempt}${f.detail ? ` (${f.detail})` : ''}`,
    `Error: ${f.errorCode}${f.errorClass ? ` (${f.errorClass})` : ''}: ${truncate(f.errorMessage, MAX_MESSAGE)}`,
    `Retries: ${f.retryCount} of ${f.maxRetries} used`,
  ];
  return {
    level: eventLevel(f.kind),
    eventKind: f.kind,
    // The notifier prefixes the level and the deployment's tag; the subject says what happened.
    subject: HEADLINE[f.kind](what, f),
    body: lines.join('\n'),
    context: {
      operationType: ref.type,
      operationId: ref.id,
      attempt: ref.attempt,
      errorCode: f.errorCode,
      ...(f.errorClass !== undefined && { errorClass: f.errorClass }),
      retryCount: f.retryCount,
      maxRetries: f.maxRetries,
      ...(f.workerId !== undefined && { workerId: f.workerId }),
      action: DONE[f.kind](f),
      advice: todo,
    },
    dedupKey: dedupKey(f.kind, ref.type, f.errorCode),
  };
}
