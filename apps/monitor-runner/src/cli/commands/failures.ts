// `failures`: failure events over a window grouped by error code and operation type, with the most
// recent examples of each group (admin/failures.ts), as tables or JSON.
import { Command } from '@commander-js/extra-typings';
import { FAILURE_EVENTS } from '@ccat/db';
import { readFailures, type Failures } from '../../admin/failures.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { errorCode, integerIn, operationType, sinceOption } from '../options.js';
import { writeJson } from '../output.js';
import { formatTime, plural } from '../render/format.js';
import { formatTable, right } from '../render/table.js';

function render(scope: string, examples: number, { groups, totalEvents }: Failures): string {
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
        formatTable(
          [right('ID'), right('ATTEMPT'), 'EVENT', 'AT', { title: 'MESSAGE', maxWidth: 80 }],
          g.examples.map((x) => [
            x.operationId,
            String(x.attempt),
            x.event,
            formatTime(x.at),
            x.message ?? '-',
          ]),
          { indent: '    ' },
        ),
      );
    }
  }
  return lines.join('\n');
}

/** `ccat-recovery failures [--since D] [--type TYPE] [--code CODE] [--examples N]`: exit 0 also when empty. */
export function failuresCommand(cli: CliContext) {
  return new Command('failures')
    .summary('failure events grouped by error code, with example operations')
    .description(
      `Failure events (${FAILURE_EVENTS.join(', ')}) recorded in the window, grouped by error code and operation type, most frequent first, with the most recent example operations of each group.`,
    )
    .addOption(sinceOption())
    .option('--type <TYPE>', 'only this operation type', operationType)
    .option('--code <CODE>', 'only this error code, e.g. CHECKSUM_MISMATCH', errorCode)
    .option('--examples <N>', 'examples per group (0 to 20)', integerIn('examples', 0, 20), 3)
    .action(({ since, type, code, examples }, command) =>
      cli.run(command, async ({ config, json, out }) => {
        const failures = await withDatabase(config, QUERIES, ({ db }) =>
          readFailures(db, { sinceMs: since.ms, type, code, examples }),
        );
        if (json) {
          const filters = { type: type ?? null, code: code ?? null };
          writeJson(out, {
            command: 'failures',
            since: since.text,
            sinceMs: since.ms,
            ...filters,
            ...failures,
          });
        } else {
          const filters = [type && `type ${type}`, code && `code ${code}`].filter(Boolean);
          const scope = `in the last ${since.text}${filters.length > 0 ? ` (${filters.join(', ')})` : ''}`;
          out.out(render(scope, examples, failures));
        }
        return EXIT.ok;
      }),
    );
}
