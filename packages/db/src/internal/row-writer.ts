// The one writer of operation_events rows and of notifications (outbox) rows: their columns, and how
// each value is bounded (limits.ts) and sanitised. A transition writes them in its own statement, over
// the updated row `u`; the batcher, the outbox store and recordEvent/recordNotification use the same.
import { truncate } from '@ccat/errors';
import { sql, type RawBuilder } from 'kysely';
import type { ErrorInfo, EventDetails, NotificationInput } from '../events.js';
import { MAX_BODY, MAX_MESSAGE, MAX_NAME, MAX_SUBJECT } from '../limits.js';
import { storedJson, storedText, storedTextOrNull } from '../sanitize.js';

type Expr = RawBuilder<unknown>;

/** The row an event or notification is about: values, or expressions over the statement's row. */
export interface RowTarget {
  readonly type: string | Expr | null;
  readonly id: string | Expr | null;
}

const name = (s: string | undefined) => (s === undefined ? null : truncate(s, MAX_NAME));
const source = (from: Expr | undefined) => (from === undefined ? sql`` : sql`FROM ${from}`);

/**
 * An event's values after (type, id, attempt), in column order: kind, error code, error class,
 * message, retryable, context (JSON text), worker id. `details` wins over `error`; `kind` is the default.
 */
export function eventValues(kind: string, details: EventDetails = {}, error?: ErrorInfo): unknown[] {
  return [
    truncate(details.event ?? kind, MAX_NAME),
    name(details.errorCode ?? error?.code),
    storedTextOrNull(details.errorClass ?? error?.errorClass, MAX_NAME),
    storedTextOrNull(details.message ?? error?.message, MAX_MESSAGE),
    details.retryable ?? error?.retryable ?? null,
    storedJson({ ...error?.context, ...details.context }),
    name(details.workerId),
  ];
}

/** INSERT of event rows (`values` as from eventValues, or expressions over `from`); returns id, operation_id. */
export function insertEvent(
  target: RowTarget & { readonly attempt: number | Expr },
  values: readonly unknown[],
  from?: Expr,
): RawBuilder<{ id: string; operation_id: string }> {
  const [event, code, errorClass, message, retryable, context, workerId] = values;
  return sql`INSERT INTO operation_events
    (operation_type, operation_id, attempt, event, error_code, error_class, message, retryable, context, worker_id)
    SELECT ${target.type}, ${target.id}, ${target.attempt}, ${event}, ${code}, ${errorClass}, ${message},
      ${retryable}, ${context}::jsonb, ${workerId} ${source(from)}
    RETURNING id, operation_id`;
}

/** A notification's values after its level, in column order: level, kind, subject, body, context (JSON text), dedup key. */
export function notificationValues(n: NotificationInput): unknown[] {
  return [
    n.level,
    truncate(n.eventKind, MAX_NAME),
    storedText(n.subject, MAX_SUBJECT),
    storedText(n.body, MAX_BODY),
    storedJson(n.context),
    n.dedupKey ?? null,
  ];
}

/**
 * INSERT of outbox rows about `target` (pending; `values` as from notificationValues, or expressions
 * over `from`); returns id. `nextAttemptAt` (default now) holds a row back; `digestOf` makes it the
 * digest of the window that row opened (the outbox claim's digests copy their leader's values).
 */
export function insertNotification(
  values: readonly unknown[],
  target: RowTarget,
  options: {
    readonly from?: Expr;
    readonly createdAt?: Date;
    readonly nextAttemptAt?: Expr;
    readonly digestOf?: Expr;
  } = {},
): RawBuilder<{ id: string; operation_id: string }> {
  const [level, kind, subject, body, context, dedupKey] = values;
  return sql`INSERT INTO notifications
    (level, event_kind, subject, body, context, dedup_key, operation_type, operation_id, created_at,
      next_attempt_at, digest_of)
    SELECT ${level}, ${kind}, ${subject}, ${body}, ${context}::jsonb, ${dedupKey},
      ${target.type}, ${target.id}, ${options.createdAt ?? sql`now()`}, ${options.nextAttemptAt ?? sql`now()`},
      ${options.digestOf ?? sql`NULL::bigint`} ${source(options.from)}
    RETURNING id, operation_id`;
}
