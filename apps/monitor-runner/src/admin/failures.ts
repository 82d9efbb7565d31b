// Failure events over a window, grouped by error code and operation type, with the most recent
// examples of each group: "what is going wrong, and where do I look".
import { FAILURE_EVENTS, failuresByErrorCode, type Database, type OperationType } from '@ccat/db';
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
}

export interface FailureGroupRow {
  readonly errorCode: string;
  readonly operationType: string;
  readonly count: number;
  readonly firstAt: Date;
  readonly lastAt: Date;
  readonly examples: readonly FailureExample[];
}

export interface Failures {
  /** The event kinds counted as failures. */
  readonly events: readonly string[];
  readonly totalEvents: number;
  /** Most frequent first. */
  readonly groups: readonly FailureGroupRow[];
}

/** The failure groups of the window; an empty window is an answer, not an error. */
export async function readFailures(db: Kysely<Database>, filter: FailuresFilter): Promise<Failures> {
  const groups = await failuresByErrorCode(db, {
    sinceMs: filter.sinceMs,
    examples: filter.examples,
    ...(filter.type !== undefined && { type: filter.type }),
    ...(filter.code !== undefined && { code: filter.code }),
  });
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
      examples: g.examples.map((x) => ({
        operationId: x.operationId,
        attempt: x.attempt,
        event: x.event,
        message: x.message,
        at: x.at,
      })),
    })),
  };
}
