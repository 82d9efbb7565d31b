// The notification model (DESIGN §7): what happened, how bad it is, and which alike events it
// belongs to. Channels, the outbox and the relay all speak this shape.

import { eventLevel, NOTIFICATION_LEVELS, type AnyEventKind, type NotificationLevel } from '@ccat/errors';

export { NOTIFICATION_LEVELS, type NotificationLevel };

/** The operation a notification is about. */
export interface NotificationOperation {
  readonly type: string;
  /** int8 as a decimal string. */
  readonly id: string;
  /** The attempt the event concerns, when known. */
  readonly attempt?: number;
}

/** One notification, as delivered. */
export interface Notification {
  /** The outbox id; absent for a notification sent directly. */
  readonly id?: string;
  readonly level: NotificationLevel;
  readonly eventKind: AnyEventKind;
  /** One line: what happened. Untrusted text (it may quote an error message). */
  readonly subject: string;
  /** Free text. Untrusted. */
  readonly body: string;
  /**
   * JSON-like facts. Well-known keys the channels show: `errorCode`, `errorMessage`, `errorClass`,
   * `where` (site, location, host), `action` (what was done), `advice` (what to do).
   */
  readonly context: Readonly<Record<string, unknown>>;
  /** Alike events share it (event kind + operation type + error code); they are digested. */
  readonly dedupKey?: string;
  /** When the event happened. */
  readonly time: Date;
  readonly operation?: NotificationOperation;
}

/** What a caller gives: `time` defaults to now and `context` to `{}`. */
export type NotificationInput = Omit<Notification, 'time' | 'context'> & {
  readonly time?: Date;
  readonly context?: Readonly<Record<string, unknown>>;
};

/** The dedup key of alike events: `eventKind:operationType:errorCode` (parts that are absent are left out). */
export function dedupKeyFor(parts: {
  readonly eventKind: string;
  readonly operationType?: string;
  readonly errorCode?: string;
}): string {
  return [parts.eventKind, parts.operationType, parts.errorCode]
    .filter((p): p is string => p !== undefined && p !== '')
    .join(':');
}

export function isNotificationLevel(value: unknown): value is NotificationLevel {
  return typeof value === 'string' && (NOTIFICATION_LEVELS as readonly string[]).includes(value);
}

/** Builds a notification for an operation event with the default level and dedup key. */
export function notificationFor(args: {
  readonly eventKind: AnyEventKind;
  readonly subject: string;
  readonly body?: string;
  readonly operation?: NotificationOperation;
  readonly error?: { readonly code: string; readonly message?: string; readonly errorClass?: string };
  readonly context?: Readonly<Record<string, unknown>>;
  readonly level?: NotificationLevel;
  readonly time?: Date;
}): Notification {
  const context: Record<string, unknown> = { ...args.context };
  if (args.error !== undefined) {
    context['errorCode'] = args.error.code;
    if (args.error.message !== undefined) context['errorMessage'] = args.error.message;
    if (args.error.errorClass !== undefined) context['errorClass'] = args.error.errorClass;
  }
  return {
    level: args.level ?? eventLevel(args.eventKind),
    eventKind: args.eventKind,
    subject: args.subject,
    body: args.body ?? '',
    context,
    dedupKey: dedupKeyFor({
      eventKind: args.eventKind,
      ...(args.operation !== undefined && { operationType: args.operation.type }),
      ...(args.error !== undefined && { errorCode: args.error.code }),
    }),
    time: args.time ?? new Date(),
    ...(args.operation !== undefined && { operation: args.operation }),
  };
}

/** Fills in `time` and `context`. */
export function toNotification(input: NotificationInput, now: () => Date = () => new Date()): Notification {
  return { ...input, time: input.time ?? now(), context: input.context ?? {} };
}
