import type { CompletionRecord, Database, Finalize, OperationRef } from '@ccat/db';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Transport } from '../transports.js';

/** What a running operation gets from the task runner. */
export interface OperationContext {
  readonly ref: OperationRef;
  readonly db: Kysely<Database>;
  /** Aborted on lease loss (the monitor recovered this attempt) or at the end of the shutdown grace. */
  readonly signal: AbortSignal;
  readonly logger: Logger;
  readonly transport: Transport;
  /** Bytes done so far: heartbeat progress in Redis, and (throttled) a fenced sign of life in PostgreSQL. */
  progress(bytesDone: number): void;
  /**
   * Fenced check that attempt k is still in progress; throws LeaseLostError otherwise. Operations do
   * not call it themselves before a destroy or publish: fenced-files.ts does, right before acting.
   */
  assertLease(): Promise<void>;
  /** Fault-injection hook: a no-op unless configured (see faults.ts). */
  checkpoint(stage: 'start' | 'middle'): Promise<void>;
}

export interface OperationResult {
  /** Bytes moved, for logs and metrics. */
  readonly bytes: number;
  /**
   * What the completion records on the operation's own row (checksum and size, verified_at,
   * deleted_at): written by the fenced completion statement itself, so never without it and at no
   * cost of its own (issue 13.5).
   */
  readonly record?: CompletionRecord;
  /**
   * Other writes that belong to the completion. Runs inside the completion transaction (the group
   * commit's batch), after the fenced completion applied: it is fenced by that. One statement per
   * row: prefer `record` where it says what is needed.
   */
  readonly finalize?: Finalize;
}

/** One pipeline operation. `run` is idempotent over whatever an interrupted run of it left. */
export interface Operation {
  run(ctx: OperationContext): Promise<OperationResult>;
}
