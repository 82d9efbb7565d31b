// `status`: what the system is doing now (admin/status.ts), as tables or JSON. When a service is
// down the rest is still shown, with a warning, and the exit code is 3.
import { Command } from '@commander-js/extra-typings';
import { readStatus } from '../../admin/status.js';
import { withSources } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT, unreachableError } from '../errors.js';
import { integerIn } from '../options.js';
import { writeJson } from '../output.js';
import { renderStatus } from '../render/status.js';

const MISSING = {
  PostgreSQL: 'operation counts and undelivered notifications are not shown',
  Redis: 'in-flight tasks, stalls and services are not shown',
} as const;

/** `ccat-recovery status [--limit N]`. */
export function statusCommand(cli: CliContext) {
  return new Command('status')
    .summary(
      'operations by type and status, undelivered notifications, in-flight tasks, stalled tasks, services',
    )
    .description(
      `Operation counts by type and status and undelivered notifications by level, with the oldest (PostgreSQL); in-flight tasks with heartbeat age and progress, tasks stalled now (heartbeat deadline passed, or progress stopped) and services alive or dead (Redis). Read-only. When Redis is down the database part is still shown, with a warning, and the exit code is 3.`,
    )
    .option('--limit <N>', 'in-flight and stalled tasks listed (1 to 1000)', integerIn('limit', 1, 1000), 20)
    .action((options, command) =>
      cli.run(command, async ({ config, json, out }) => {
        const status = await withSources(config, (db, redis) =>
          readStatus({ db, redis, keyPrefix: config.keyPrefix, limit: options.limit }),
        );
        if (json) writeJson(out, { command: 'status', ...status });
        else out.out(renderStatus(status, options.limit));
        for (const down of status.unavailable) {
          const e = unreachableError(down);
          out.err(`ccat-recovery: warning: ${e.message}; ${MISSING[down.service]}\n  ${e.hint}`);
        }
        return status.unavailable.length > 0 ? EXIT.unreachable : EXIT.ok;
      }),
    );
}
