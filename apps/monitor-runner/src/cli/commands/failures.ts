// `failures`: failure events over a window grouped by error code and operation type, with the most
// recent examples of each group, where each is now, the advice and the retry command
// (admin/failures.ts), as tables or JSON.
import { Command } from '@commander-js/extra-typings';
import { FAILURE_EVENTS } from '@ccat/db';
import { readFailures } from '../../admin/failures.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { errorCode, integerIn, operationType, sinceOption } from '../options.js';
import { writeJson } from '../output.js';
import { renderFailures } from '../render/failures.js';

/** `ccat-recovery failures [--since D] [--type TYPE] [--code CODE] [--examples N]`: exit 0 also when empty. */
export function failuresCommand(cli: CliContext) {
  return new Command('failures')
    .summary('failure events grouped by error code, with example operations')
    .description(
      `Failure events (${FAILURE_EVENTS.join(', ')}) recorded in the window, grouped by error code and operation type, most frequent first, with the most recent example operations of each group: where each operation is now (an operation retried and completed since says so), the advice for the error code, and \`ccat-recovery retry <type> <id>\` for each one failed now, and \`ccat-recovery show <type> <id>\` for each, which prints its whole message and history. --json carries the same fields.`,
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
          out.out(renderFailures(scope, examples, failures));
        }
        return EXIT.ok;
      }),
    );
}
