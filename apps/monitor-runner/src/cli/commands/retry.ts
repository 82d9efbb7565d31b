// `retry`: an operator's decision to run failed operations again (admin/retry.ts): one operation by
// type and id, or every failed operation of a type matching a filter, which needs an explicit --yes.
import { Command } from '@commander-js/extra-typings';
import type { OperationType } from '@ccat/db';
import {
  listFailedOperations,
  retryFailedRow,
  retryOperation,
  type FailedOperation,
  type RetryResult,
} from '../../admin/retry.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext, Session } from '../context.js';
import { EXIT, UsageError, type ExitCode } from '../errors.js';
import { errorCode, integerIn, operationId, operationType, parseDuration, type Since } from '../options.js';
import { writeJson } from '../output.js';
import { renderBulkPlan, renderResults } from '../render/retry.js';

/** The `retry --json` document: the same keys in both forms (null where a form has no such thing). */
export interface RetryDocument {
  readonly command: 'retry';
  readonly mode: 'single' | 'bulk';
  /** True when nothing was attempted: a bulk run without --yes. */
  readonly dryRun: boolean;
  readonly type: OperationType;
  /** The single form's id. */
  readonly id: string | null;
  /** The bulk form's filters. */
  readonly code: string | null;
  readonly since: string | null;
  /** Failed operations the request matched (single form: 1 when the operation is failed, else 0). */
  readonly matched: number;
  /** What a dry run would reset (at most --limit of `matched`). */
  readonly wouldRetry: readonly FailedOperation[];
  readonly results: readonly RetryResult[];
}

/** The document with the nulls of the form that does not apply. */
const document = (
  d: Pick<RetryDocument, 'mode' | 'type' | 'matched' | 'results'> & Partial<RetryDocument>,
): RetryDocument => ({
  command: 'retry',
  dryRun: false,
  id: null,
  code: null,
  since: null,
  wouldRetry: [],
  ...d,
});

interface BulkOptions {
  readonly type: OperationType;
  readonly code: string | undefined;
  readonly since: Since | undefined;
  readonly limit: number;
  readonly yes: boolean;
}

async function single(s: Session, type: OperationType, id: string): Promise<ExitCode> {
  const result = await withDatabase(s.config, QUERIES, ({ db }) =>
    retryOperation({ db, operator: s.operator }, type, id),
  );
  const matched = result.before?.status === 'failed' ? 1 : 0;
  if (s.json) writeJson(s.out, document({ mode: 'single', type, id, matched, results: [result] }));
  else renderResults(s.out, [result]);
  return result.outcome === 'retried' ? EXIT.ok : EXIT.refused;
}

async function bulk(s: Session, options: BulkOptions): Promise<ExitCode> {
  const filters = { type: options.type, code: options.code ?? null, since: options.since?.text ?? null };
  const { rows, total, results } = await withDatabase(s.config, QUERIES, async ({ db }) => {
    const found = await listFailedOperations(db, { ...options, sinceMs: options.since?.ms });
    const done: RetryResult[] = [];
    // One at a time: each is its own fenced statement and event; a bulk run is rare and small.
    for (const row of options.yes ? found.rows : [])
      done.push(
        await retryFailedRow({ db, operator: s.operator }, options.type, row, { mode: 'bulk', filters }),
      );
    return { ...found, results: done };
  });
  const dryRun = !options.yes;
  const wouldRetry = dryRun ? rows : [];
  if (s.json)
    writeJson(s.out, document({ mode: 'bulk', dryRun, ...filters, matched: total, wouldRetry, results }));
  else if (dryRun || rows.length === 0) renderBulkPlan(s.out, options, rows, total);
  else renderResults(s.out, results, total - rows.length, options.limit);
  // Nothing matched: there is nothing --yes would do, so that is an answer, not a refusal.
  if (rows.length === 0) return EXIT.ok;
  if (dryRun) {
    const what = `${total} failed ${options.type} operation${total === 1 ? '' : 's'}`;
    s.out.err(`ccat-recovery: nothing changed: retrying ${what} needs --yes`);
    return EXIT.usage;
  }
  return results.every((r) => r.outcome === 'retried') ? EXIT.ok : EXIT.refused;
}

/** `ccat-recovery retry <type> <id>` or `retry --type TYPE [filters] --yes`: exit 0 done, 4 any refused, 2 without --yes. */
export function retryCommand(cli: CliContext) {
  return new Command('retry')
    .summary('run a failed operation again (or, with --yes, every failed one matching a filter)')
    .usage(
      `<type> <id> [--json]
       ccat-recovery retry --type TYPE [--code CODE] [--since D] [--limit N] --yes [--json]`,
    )
    .description(
      `Resets a FAILED operation to pending (attempt+1, retry count 0, due now) and records a manual_retry event naming you. Only failed operations: anything else is refused (exit 4) and left unchanged.

The bulk form retries every failed operation of TYPE matching the filters, each one separately and fenced (one that changed meanwhile is reported and left alone). Without --yes it only lists what it would retry and exits 2.`,
    )
    .argument('[type]', 'operation type (single form)', operationType)
    .argument('[id]', 'operation id (single form)', operationId)
    .option('--type <TYPE>', 'operation type (bulk form; required there)', operationType)
    .option('--code <CODE>', 'only operations whose last error code is CODE', errorCode)
    .option(
      '--since <D>',
      'only operations that failed within D, e.g. 24h, 7d (default: any time)',
      parseDuration,
    )
    .option(
      '--limit <N>',
      'at most N operations per run (default 1000, 1 to 10000)',
      integerIn('limit', 1, 10_000),
    )
    .option('-y, --yes', 'really do it (bulk form)')
    .action((type, id, options, command) => {
      if (type !== undefined) {
        const bulkOnly = (['type', 'code', 'since', 'limit'] as const).filter(
          (f) => options[f] !== undefined,
        );
        if (bulkOnly.length > 0)
          throw new UsageError(
            `give either <type> <id> or the bulk form (--type …), not both (got --${bulkOnly[0]} with arguments)`,
          );
        if (id === undefined)
          throw new UsageError(`retry needs an operation id after the type ${JSON.stringify(type)}`);
        return cli.run(command, (s) => single(s, type, id));
      }
      if (options.type === undefined)
        throw new UsageError('retry needs <type> <id>, or --type TYPE … --yes for the bulk form');
      const bulkOptions = {
        type: options.type,
        code: options.code,
        since: options.since,
        limit: options.limit ?? 1000,
        yes: options.yes === true,
      };
      return cli.run(command, (s) => bulk(s, bulkOptions));
    });
}
