// The text form of `retry`: results on stdout, refusals on stderr (they explain a non-zero exit).
import type { OperationType } from '@ccat/db';
import type { FailedOperation, RetryResult, RetryState } from '../../admin/retry.js';
import type { Output } from '../output.js';
import { formatTime, plural } from '../../format.js';
import { formatTable, right } from './table.js';

const describeState = (s: RetryState | null) =>
  s === null ? '-' : `${s.status}, attempt ${s.attempt}, retry count ${s.retryCount}`;

function refusal(r: RetryResult): string {
  switch (r.outcome) {
    case 'not_found':
      return `refused: there is no ${r.type} operation with id ${r.id}; nothing changed`;
    case 'refused':
      return `refused: ${r.type} ${r.id} is ${r.before?.status ?? '?'} (attempt ${r.before?.attempt ?? '?'}), not failed; nothing changed (only failed operations can be retried by hand)`;
    case 'changed':
      return `refused: ${r.type} ${r.id} changed while being retried (now ${describeState(r.after)}); nothing changed`;
    case 'retried':
      return '';
  }
}

function retried(r: RetryResult): string {
  const code = r.before?.lastErrorCode;
  return `retried ${r.type} ${r.id}: failed at attempt ${r.before?.attempt ?? '?'}${code ? ` (${code})` : ''} → ${describeState(r.after)}, due now${r.eventId === null ? '' : `; event manual_retry #${r.eventId}`}`;
}

/**
 * One line per single result; a table and a summary for a bulk run, and how many more matched
 * beyond --limit `limit` (`more`).
 */
export function renderResults(out: Output, results: readonly RetryResult[], more = 0, limit = 0): void {
  if (results.length === 1) {
    if (results[0]!.outcome === 'retried') out.out(retried(results[0]!));
  } else {
    const ok = results.filter((r) => r.outcome === 'retried').length;
    out.out(
      formatTable(
        [right('ID'), 'OUTCOME', 'BEFORE', 'NOW'],
        results.map((r) => [r.id, r.outcome, describeState(r.before), describeState(r.after)]),
      ),
    );
    out.out(`retried ${ok} of ${plural(results.length, `failed ${results[0]?.type ?? ''} operation`)}`);
  }
  if (more > 0) out.out(`${more} more match beyond --limit ${limit}; run the command again for them`);
  for (const r of results) if (r.outcome !== 'retried') out.err(`ccat-recovery: ${refusal(r)}`);
}

/** What a bulk retry would reset (the dry run without --yes). */
export function renderBulkPlan(
  out: Output,
  filter: {
    type: OperationType;
    code: string | undefined;
    since: { text: string } | undefined;
    limit: number;
  },
  rows: readonly FailedOperation[],
  total: number,
): void {
  const parts = [
    filter.code && `last error ${filter.code}`,
    filter.since && `failed within ${filter.since.text}`,
  ];
  const scope = parts.filter(Boolean).join(', ');
  const what = `failed ${filter.type} operation`;
  if (rows.length === 0) {
    out.out(`No ${what}s match${scope ? ` (${scope})` : ''}; nothing to retry.`);
    return;
  }
  out.out(
    `${plural(total, what)} match${total === 1 ? 'es' : ''}${scope ? ` (${scope})` : ''}; these would be retried:`,
  );
  out.out(
    formatTable(
      [
        right('ID'),
        right('ATTEMPT'),
        right('RETRIES'),
        'ERROR CODE',
        'FAILED AT',
        { title: 'MESSAGE', maxWidth: 60 },
      ],
      rows.map((r) => [
        r.id,
        String(r.attempt),
        String(r.retryCount),
        r.lastErrorCode ?? '-',
        formatTime(r.failedAt),
        r.lastErrorMessage ?? '-',
      ]),
    ),
  );
  if (total > rows.length) out.out(`… and ${total - rows.length} more (--limit ${filter.limit})`);
}
