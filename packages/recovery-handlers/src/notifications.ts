// What a human reads. Built from facts only; the notifier escapes and redacts on delivery.
import type { NotificationInput } from '@ccat/db';
import { truncate } from '@ccat/errors';
import type { TaskRef } from './handler.js';

export type RecoveryEventKind =
  'permanent_failure' | 'stall_exhausted' | 'stall_recovered' | 'retry_scheduled';

/** DESIGN §7: permanent failure and failed recovery → ERROR; stall recovered → WARNING; retries → INFO. */
export const EVENT_LEVELS: Readonly<Record<RecoveryEventKind, NotificationInput['level']>> = {
  permanent_failure: 'ERROR',
  stall_exhausted: 'ERROR',
  stall_recovered: 'WARNING',
  retry_scheduled: 'INFO',
};

/**
 * What to do, by error code: the runbook's advice, in one place (the docs are generated from it).
 * Codes without an entry get the generic advice.
 */
export const RUNBOOK_HINTS: Readonly<Record<string, string>> = {
  STALLED_TOO_OFTEN:
    'The task died, froze or hung on every attempt. Check the worker hosts (OOM kills, hung mounts, `dmesg`), and the heartbeat/progress timeouts for this operation type; then retry it.',
  CHECKSUM_MISMATCH:
    'A copy does not match its checksum even after re-copying. Compare the source file with its recorded sha256; if the source is damaged, it needs a human decision. If the source is fine, check the transfer path (disk, network), then retry.',
  ARCHIVE_CORRUPT:
    'An archive cannot be read back. Re-create the package from the source files (retry the packaging operation), then retry this one.',
  DATA_CORRUPTION:
    'Data does not match what the database recorded. Inspect the files named in the context before retrying anything.',
  STORAGE_FULL:
    'A disk is full. Free space at the location named in the context (deletions may be waiting), then retry.',
  PERMISSION_DENIED:
    'The worker may not read or write a path. Fix ownership/permissions of the location named in the context, then retry.',
  READ_ONLY_STORAGE: 'A location is mounted read-only. Remount it read-write, then retry.',
  FILE_NOT_FOUND:
    'A file the operation needs is missing. Check that the location is mounted and the file was not moved or deleted, then retry.',
  DESTINATION_EXISTS:
    'The destination already holds a different file of the same name. Decide which copy is right, move the other away, then retry.',
  DELETION_NOT_SAFE:
    'Deletion was refused because no verified archived copy exists. Check the long-term archive transfer of this package; never delete by hand before it is verified.',
  HOST_NOT_FOUND: 'A host name does not resolve. Check the transfer configuration and DNS.',
  BBCP_ERROR:
    'The transfer command failed. Read its exit code and stderr in the context; check the remote host and credentials, then retry.',
  CONFIGURATION_ERROR:
    'The configuration is wrong. Fix it (the message names the setting) and restart the service, then retry.',
  VALIDATION_FAILED: 'Input failed validation. The message names the field; fix the producer of that input.',
  INTERNAL_ERROR:
    'A bug in ccat-recovery or an operation. Report it with the log lines around the operation id; retry after a fix.',
  UNKNOWN_ERROR:
    'An error nobody classified. Read the logs around the operation id; if it is transient, retry; consider classifying it.',
  DB_UNIQUE_VIOLATION:
    'A database constraint refused a write: the data model and the files disagree. Inspect the rows named in the context.',
};

const GENERIC_HINT = 'Read the error and the logs around the operation id, fix the cause, then retry.';

export function runbookHint(code: string): string {
  return RUNBOOK_HINTS[code] ?? GENERIC_HINT;
}

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

/** The outbox notification for a recovery decision. */
export function buildNotification(f: NotificationFacts): NotificationInput {
  const { ref } = f;
  const what = `${ref.type} ${ref.id}`;
  const headline: Record<RecoveryEventKind, string> = {
    permanent_failure: `${what} FAILED: ${f.errorCode}`,
    stall_exhausted: `${what} FAILED: stalled too often`,
    stall_recovered: `${what} stalled and was reset for retry`,
    retry_scheduled: `${what} will be retried (${f.errorCode})`,
  };
  const done: Record<RecoveryEventKind, string> = {
    permanent_failure: 'Marked FAILED. No further automatic retries.',
    stall_exhausted: 'Marked FAILED with STALLED_TOO_OFTEN. No further automatic retries.',
    stall_recovered: `Reset to PENDING as attempt ${ref.attempt + 1}; it runs again${f.delayMs ? ` in about ${Math.ceil(f.delayMs / 1000)} s` : ' now'}.`,
    retry_scheduled: `Reset to PENDING as attempt ${ref.attempt + 1}; it runs again in about ${Math.ceil((f.delayMs ?? 0) / 1000)} s.`,
  };
  const todo =
    f.kind === 'permanent_failure' || f.kind === 'stall_exhausted'
      ? `${runbookHint(f.errorCode)} Then: ccat-recovery retry ${ref.type} ${ref.id}`
      : 'Nothing, unless this repeats.';
  const lines = [
    `What: ${what}, attempt ${ref.attempt}${f.detail ? ` (${f.detail})` : ''}`,
    `Error: ${f.errorCode}${f.errorClass ? ` (${f.errorClass})` : ''}: ${truncate(f.errorMessage, 2000)}`,
    `Where: ${f.workerId ?? 'unknown worker'}`,
    `Retries: ${f.retryCount} of ${f.maxRetries} used`,
    `Done: ${done[f.kind]}`,
    `To do: ${todo}`,
  ];
  return {
    level: EVENT_LEVELS[f.kind],
    eventKind: f.kind,
    // The notifier prefixes the level and the deployment's tag; the subject says what happened.
    subject: headline[f.kind],
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
    },
    dedupKey: dedupKey(f.kind, ref.type, f.errorCode),
  };
}
