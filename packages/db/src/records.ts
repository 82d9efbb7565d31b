// Event and outbox rows written on their own, in the caller's transaction: for a decision whose state
// change wrote none (a lease lost, a custom handler's transition). Same columns, bounds and
// sanitising as a transition's own (internal/row-writer.ts, the one writer).
import type { Kysely } from 'kysely';
import type { ErrorInfo, EventDetails, NotificationInput } from './events.js';
import type { AnyEventKind } from '@ccat/errors';
import { classified } from './internal/classified.js';
import { eventValues, insertEvent, insertNotification, notificationValues } from './internal/row-writer.js';
import { parseAttempt, parseOperationId } from './operation-types.js';
import type { Database } from './schema.js';

/** The attempt of an operation an event is about; `type` may be another service's own. */
export interface EventOperation {
  readonly type: string;
  readonly id: string;
  readonly attempt: number;
}

/**
 * Writes one operation_events row about `operation`: kind `event.event`, the rest from `event`, then
 * from `error` (code, class, message, retryable, context). Bounded by limits.ts, secrets redacted.
 * Returns its id. Throws a ValidationError for a bad id or attempt, a classified error when the
 * database refuses.
 */
export async function recordEvent(
  db: Kysely<Database>,
  operation: EventOperation,
  event: EventDetails & { readonly event: AnyEventKind },
  error?: ErrorInfo,
): Promise<string> {
  const target = {
    type: operation.type,
    id: parseOperationId(operation.id),
    attempt: parseAttempt(operation.attempt),
  };
  const insert = insertEvent(target, eventValues(event.event, event, error));
  return classified(async () => String((await insert.execute(db)).rows[0]!.id));
}

/**
 * Writes one outbox notification about `operation` (pending, due now; the relay delivers it).
 * Bounded by limits.ts, secrets redacted. Returns its id. Throws as recordEvent.
 */
export async function recordNotification(
  db: Kysely<Database>,
  notification: NotificationInput,
  operation: { readonly type: string; readonly id: string },
): Promise<string> {
  const target = { type: operation.type, id: parseOperationId(operation.id) };
  const insert = insertNotification(notificationValues(notification), target);
  return classified(async () => String((await insert.execute(db)).rows[0]!.id));
}
