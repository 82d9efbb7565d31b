// `retry`: an operator's decision to run failed operations again (DESIGN §4: failed → pending,
// attempt+1, retry_count reset, event `manual_retry`). One operation by type and id, or every failed
// operation of a type matching a filter, which needs an explicit --yes. Every row goes through the
// fenced manualRetry on the attempt that was read, so a row that changed meanwhile is reported, not
// overwritten.
import {
  manualRetry,
  parseOperationId,
  readOperation,
  type Database,
  type EventDetails,
  type OperationSnapshot,
  type OperationType,
} from '@ccat/db';
import { classifyError } from '@ccat/errors';
import type { Kysely } from 'kysely';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { EXIT, UsageError, type ExitCode } from './exit-codes.js';
import { listFailedOperations, type FailedOperation } from './failed-operations.js';
import {
  booleanFlag,
  durationFlag,
  errorCodeFlag,
  integerFlag,
  operationTypeArg,
  stringFlag,
} from './flags.js';
import { writeJson, type CommandIo } from './output.js';
import type { RetryDocument, RetryResult } from './retry-result.js';
import { renderBulkPlan, renderResults } from './retry-text.js';

export const retrySpec: CommandSpec = {
  name: 'retry',
  summary: 'run a failed operation again (or, with --yes, every failed one matching a filter)',
  options: {
    type: { type: 'string' },
    code: { type: 'string' },
    since: { type: 'string' },
    limit: { type: 'string' },
    yes: { type: 'boolean', short: 'y' },
  },
  usage: `usage: ccat-recovery retry <type> <id> [--json]
       ccat-recovery retry --type TYPE [--code CODE] [--since D] [--limit N] --yes [--json]

Resets a FAILED operation to pending (attempt+1, retry count 0, due now) and records a manual_retry
event naming you. Only failed operations: anything else is refused (exit 4) and left unchanged.

The bulk form retries every failed operation of TYPE matching the filters, each one separately and
fenced (one that changed meanwhile is reported and left alone). Without --yes it only lists what it
would retry and exits 2.

  --type TYPE   operation type (bulk form; required there)
  --code CODE   only operations whose last error code is CODE
  --since D     only operations that failed within D, e.g. 24h, 7d (default: any time)
  --limit N     at most N operations per run (default 1000, 1 to 10000)
  --yes, -y     really do it (bulk form)`,
};

export type RetryOptions =
  | { readonly mode: 'single'; readonly type: OperationType; readonly id: string }
  | {
      readonly mode: 'bulk';
      readonly type: OperationType;
      readonly code: string | undefined;
      readonly since: { readonly text: string; readonly ms: number } | undefined;
      readonly limit: number;
      readonly yes: boolean;
    };

export function parseRetryArgs(values: FlagValues, positionals: readonly string[]): RetryOptions {
  const usage = retrySpec.usage;
  if (positionals.length > 0) {
    const bulkOnly = ['type', 'code', 'since', 'limit'].filter((f) => values[f] !== undefined);
    if (bulkOnly.length > 0) {
      throw new UsageError(
        `give either <type> <id> or the bulk form (--type …), not both (got --${bulkOnly[0]} with arguments)`,
        usage,
      );
    }
    if (positionals.length !== 2) {
      throw new UsageError(
        positionals.length === 1
          ? `retry needs an operation id after the type ${JSON.stringify(positionals[0]!.slice(0, 40))}`
          : `retry takes two arguments, <type> <id>; got ${positionals.length}`,
        usage,
      );
    }
    const type = operationTypeArg(retrySpec, positionals[0]!);
    let id: string;
    try {
      id = parseOperationId(positionals[1]);
    } catch (e) {
      throw new UsageError(classifyError(e).message, usage);
    }
    return { mode: 'single', type, id };
  }
  const type = stringFlag(values, 'type');
  if (type === undefined) {
    throw new UsageError('retry needs <type> <id>, or --type TYPE … --yes for the bulk form', usage);
  }
  return {
    mode: 'bulk',
    type: operationTypeArg(retrySpec, type),
    code: errorCodeFlag(retrySpec, values),
    since: durationFlag(retrySpec, values, 'since'),
    limit: integerFlag(retrySpec, values, 'limit', { min: 1, max: 10_000, dflt: 1000 }),
    yes: booleanFlag(values, 'yes'),
  };
}

export interface RetryDeps extends CommandIo {
  readonly db: Kysely<Database>;
  /** Who asked: recorded as `cli:<operator>` in the event's worker_id. */
  readonly operator: string;
}

const state = (op: OperationSnapshot) => ({
  status: op.status,
  attempt: op.attempt,
  retryCount: op.retryCount,
  lastErrorCode: op.lastErrorCode,
});

/** One fenced reset: applies only while the row is still failed at `before.attempt`. */
async function retryOne(
  deps: RetryDeps,
  type: OperationType,
  before: Pick<FailedOperation, 'id' | 'attempt' | 'retryCount' | 'lastErrorCode'>,
  context: Record<string, unknown>,
): Promise<RetryResult> {
  const event: EventDetails = {
    workerId: `cli:${deps.operator}`,
    message: `manual retry by ${deps.operator} via ccat-recovery`,
    context: {
      via: 'ccat-recovery',
      previousErrorCode: before.lastErrorCode,
      previousRetryCount: before.retryCount,
      ...context,
    },
  };
  const shown = {
    status: 'failed' as const,
    attempt: before.attempt,
    retryCount: before.retryCount,
    lastErrorCode: before.lastErrorCode,
  };
  const result = await manualRetry(deps.db, type, before.id, { expectedAttempt: before.attempt }, { event });
  if (result.applied && result.operation !== undefined) {
    return {
      type,
      id: before.id,
      outcome: 'retried',
      before: shown,
      after: state(result.operation),
      eventId: result.eventId ?? null,
    };
  }
  const now = await readOperation(deps.db, type, before.id);
  return {
    type,
    id: before.id,
    outcome: now === undefined ? 'not_found' : 'changed',
    before: shown,
    after: now === undefined ? null : state(now),
    eventId: null,
  };
}

async function runSingle(deps: RetryDeps, type: OperationType, id: string): Promise<RetryResult> {
  const before = await readOperation(deps.db, type, id);
  if (before === undefined) {
    return { type, id, outcome: 'not_found', before: null, after: null, eventId: null };
  }
  if (before.status !== 'failed') {
    return { type, id, outcome: 'refused', before: state(before), after: state(before), eventId: null };
  }
  return retryOne(deps, type, before, { mode: 'single' });
}

/** Retries; exit 0 when every requested row was reset, 4 when any was refused, 2 for a bulk run without --yes. */
export async function runRetry(deps: RetryDeps, options: RetryOptions): Promise<ExitCode> {
  if (options.mode === 'single') {
    const result = await runSingle(deps, options.type, options.id);
    if (deps.json) {
      writeJson<RetryDocument>(deps.out, {
        command: 'retry',
        mode: 'single',
        dryRun: false,
        type: options.type,
        id: options.id,
        code: null,
        since: null,
        matched: result.before?.status === 'failed' ? 1 : 0,
        wouldRetry: [],
        results: [result],
      });
    } else {
      renderResults(deps.out, [result]);
    }
    return result.outcome === 'retried' ? EXIT.ok : EXIT.refused;
  }
  const { rows, total } = await listFailedOperations(deps.db, {
    type: options.type,
    code: options.code,
    sinceMs: options.since?.ms,
    limit: options.limit,
  });
  const filters = { type: options.type, code: options.code ?? null, since: options.since?.text ?? null };
  const document = (results: readonly RetryResult[]): RetryDocument => ({
    command: 'retry',
    mode: 'bulk',
    dryRun: !options.yes,
    ...filters,
    id: null,
    matched: total,
    wouldRetry: options.yes ? [] : rows,
    results,
  });
  if (!options.yes || rows.length === 0) {
    if (deps.json) writeJson(deps.out, document([]));
    else renderBulkPlan(deps.out, options, rows, total);
    // Nothing matched: there is nothing --yes would do, so that is an answer, not a refusal.
    if (rows.length === 0) return EXIT.ok;
    deps.out.err(
      `ccat-recovery: nothing changed: retrying ${total} failed ${options.type} operation${total === 1 ? '' : 's'} needs --yes`,
    );
    return EXIT.usage;
  }
  const results: RetryResult[] = [];
  // One at a time: each is its own fenced statement and event; a bulk run is rare and small.
  for (const row of rows) {
    results.push(await retryOne(deps, options.type, row, { mode: 'bulk', filters }));
  }
  if (deps.json) {
    writeJson(deps.out, document(results));
  } else {
    renderResults(deps.out, results);
    if (total > rows.length) {
      deps.out.out(
        `${total - rows.length} more match beyond --limit ${options.limit}; run the command again for them`,
      );
    }
  }
  return results.every((r) => r.outcome === 'retried') ? EXIT.ok : EXIT.refused;
}
