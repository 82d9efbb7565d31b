// `show <type> <id>`: one operation's whole history (admin/history.ts), as text or JSON. Without
// Redis the database part is still shown, with a warning, and the exit code is 3.
import { Command } from '@commander-js/extra-typings';
import { OPERATION_TYPES } from '@ccat/db';
import { classifyError } from '@ccat/errors';
import { isConnectionError } from '@ccat/service';
import { OperationNotFoundError, readHistory } from '../../admin/history.js';
import { withSources } from '../connections.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT, unreachable, unreachableError } from '../errors.js';
import { integerIn, operationId, operationType } from '../options.js';
import { writeJson } from '../output.js';
import { renderHistory } from '../render/history.js';

/** `ccat-recovery show <type> <id> [--limit N]`: exit 4 when there is no such operation. */
export function showCommand(cli: CliContext) {
  return new Command('show')
    .summary("one operation's whole history: row, events, notifications, heartbeat now")
    .description(
      `One operation's row (status, attempt, retry count, times, last error), its events (attempts, decisions, error codes, messages, workers), its notifications (level, kind, status, attempts, sent at, last error) and what Redis knows now (heartbeat member of the current attempt, its worker). Types: ${OPERATION_TYPES.join(', ')}. Read-only. Exit 4 when no such operation exists.`,
    )
    .argument('<type>', 'operation type', operationType)
    .argument('<id>', 'operation id', operationId)
    .option('--limit <N>', 'events and notifications listed (1 to 10000)', integerIn('limit', 1, 10_000), 500)
    .action((type, id, options, command) =>
      cli.run(command, async ({ config, json, out }) => {
        const history = await withSources(config, async (db, redis) => {
          if (!db.ok) throw unreachableError(db.unavailable);
          try {
            return await readHistory({
              db: db.client,
              redis,
              keyPrefix: config.keyPrefix,
              type,
              id,
              limit: options.limit,
            });
          } catch (e) {
            if (e instanceof OperationNotFoundError) throw new CliError(e.message, EXIT.refused);
            if (isConnectionError(classifyError(e))) throw unreachable('PostgreSQL', db.where, e);
            throw e;
          }
        });
        if (json) writeJson(out, { command: 'show', ...history });
        else out.out(renderHistory(history));
        for (const down of history.unavailable) {
          const e = unreachableError(down);
          out.err(`ccat-recovery: warning: ${e.message}; what Redis knows now is not shown\n  ${e.hint}`);
        }
        return history.unavailable.length > 0 ? EXIT.unreachable : EXIT.ok;
      }),
    );
}
