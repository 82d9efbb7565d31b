// The text form of `failures`: the groups, then per group its advice, its examples with where each
// operation is now, and the command that retries each one failed now.
import { currentStateText, type Failures } from '../../admin/failures.js';
import { formatTime, plural } from '../../format.js';
import { formatTable, right } from './table.js';

/** `scope`: "in the last 24h (type …)"; `examples`: the --examples asked for (0: no example section). */
export function renderFailures(scope: string, examples: number, { groups, totalEvents }: Failures): string {
  if (groups.length === 0) return `No failure events ${scope}.`;
  const lines = [
    `Failure events ${scope}: ${plural(totalEvents, 'event')} in ${plural(groups.length, 'group')}`,
    formatTable(
      ['ERROR CODE', 'TYPE', right('EVENTS'), 'FIRST', 'LAST', { title: 'EXAMPLE IDS', maxWidth: 40 }],
      groups.map((g) => [
        g.errorCode,
        g.operationType,
        String(g.count),
        formatTime(g.firstAt),
        formatTime(g.lastAt),
        // An operation that failed twice is one example, not two.
        [...new Set(g.examples.map((x) => x.operationId))].join(', ') || '-',
      ]),
    ),
  ];
  if (examples > 0) {
    lines.push('', 'Examples, newest first:');
    for (const g of groups) {
      lines.push(
        `  ${g.errorCode} ${g.operationType}`,
        `    To do: ${g.advice}`,
        formatTable(
          [
            right('ID'),
            right('ATTEMPT'),
            'EVENT',
            'AT',
            { title: 'NOW', maxWidth: 36 },
            { title: 'MESSAGE', maxWidth: 80 },
          ],
          g.examples.map((x) => [
            x.operationId,
            String(x.attempt),
            x.event,
            formatTime(x.at),
            currentStateText(x),
            x.message ?? '-',
          ]),
          { indent: '    ' },
        ),
      );
      const retry = [
        ...new Set(g.examples.flatMap((x) => (x.retryCommand === null ? [] : [x.retryCommand]))),
      ];
      if (retry.length > 0) lines.push(`    Failed now; retry with:`, ...retry.map((c) => `      ${c}`));
      // The table cuts long messages: each example's whole message and history is one command away.
      const show = [...new Set(g.examples.flatMap((x) => (x.showCommand === null ? [] : [x.showCommand])))];
      if (show.length > 0) lines.push(`    Whole messages and history:`, ...show.map((c) => `      ${c}`));
    }
  }
  return lines.join('\n');
}
