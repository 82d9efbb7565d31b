// Failure events over a window, grouped by error code and operation type, with the most recent
// examples of each group: "what is going wrong, and where do I look", where each example is now,
// the catalogue's advice and the command that retries what is failed now.
import {
  currentStates,
  FAILURE_EVENTS,
  failuresByErrorCode,
  isOperationType,
  type CurrentState,
  type Database,
  type OperationType,
} from '@ccat/db';
import { adviceFor } from '@ccat/errors';
import type { Kysely } from 'kysely';

export interface FailuresFilter {
  /** Window length in ms, back from the database's now. */
  readonly sinceMs: number;
  readonly type?: OperationType | undefined;
  readonly code?: string | undefined;
  /** Example operations per group, newest first. */
  readonly examples: number;
}

export interface FailureExample {
  readonly operationId: string;
  readonly attempt: number;
  readonly event: string;
  readonly message: string | null;
  readonly at: Date;
  /**
   * Where the operation is now (it may have been retried and completed since this event); null when
   * its row is gone.
   */
  readonly current: CurrentState | null;
  /** `ccat-recovery retry <type> <id>` when the operation is failed now, else null. */
  readonly retryCommand: string | null;
  /**
   * `ccat-recovery show <type> <id>`: the operation's whole history, where a message cut in the
   * failures table is printed whole; null when the group's type is not an operation type.
   */
  readonly showCommand: string | null;
}

export interface FailureGroupRow {
  readonly errorCode: string;
  readonly operationType: string;
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  /** What to do about this error code (the catalogue's ERROR_ADVICE, or its generic advice). */
  readonly advice: string;
  readonly examples: readonly FailureExample[];
}

export interface Failures {
  /** The event kinds counted as failures. */
  readonly events: readonly string[];
  readonly totalEvents: number;
  /** Most frequent first. */
  readonly groups: readonly FailureGroupRow[];
}

/**
 * An example's current state in a few words, as the CLI and the dashboard show it:
 * "completed (attempt 3, retried since)", "failed (attempt 0)", "gone" (its row was deleted).
 */
export function currentStateText(x: FailureExample): string {
  if (x.current === null) return 'gone';
  const since = x.current.attempt > x.attempt ? ', retried since' : '';
  return `${x.current.status} (attempt ${x.current.attempt}${since})`;
}

/**
 * The failure groups of the window, each example with its operation's current state (one query per
 * operation type); an empty window is an answer, not an error. Throws the classified database error.
 */
export async function readFailures(db: Kysely<Database>, filter: FailuresFilter): Promise<Failures> {
  const groups = await failuresByErrorCode(db, {
    sinceMs: filter.sinceMs,
    examples: filter.examples,
    ...(filter.type !== undefined && { type: filter.type }),
    ...(filter.code !== undefined && { code: filter.code }),
  });
  const idsByType = new Map<OperationType, string[]>();
  for (const g of groups) {
    if (!isOperationType(g.operationType)) continue;
    const ids = idsByType.get(g.operationType) ?? [];
    ids.push(...g.examples.map((x) => x.operationId));
    idsByType.set(g.operationType, ids);
  }
  const states = new Map<string, CurrentState>();
  for (const [type, ids] of idsByType)
    for (const [id, state] of await currentStates(db, type, ids)) states.set(`${type}:${id}`, state);
  return {
    events: [...FAILURE_EVENTS],
    totalEvents: groups.reduce((n, g) => n + g.count, 0),
    // Spelled out, not spread: these keys are a contract with scripts.
    groups: groups.map((g) => ({
      errorCode: g.errorCode,
      operationType: g.operationType,
      count: g.count,
      firstAt: g.firstAt,
      lastAt: g.lastAt,
      advice: adviceFor(g.errorCode),
      examples: g.examples.map((x) => {
        const current = states.get(`${g.operationType}:${x.operationId}`) ?? null;
        return {
          operationId: x.operationId,
          attempt: x.attempt,
          event: x.event,
          message: x.message,
          at: x.at,
          current,
          retryCommand:
            current?.status === 'failed' ? `ccat-recovery retry ${g.operationType} ${x.operationId}` : null,
          showCommand: isOperationType(g.operationType)
            ? `ccat-recovery show ${g.operationType} ${x.operationId}`
            : null,
        };
      }),
    })),
  };
}
