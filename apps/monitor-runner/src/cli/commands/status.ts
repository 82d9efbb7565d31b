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
  PostgreSQL: 'operation counts, stuck operations and undelivered notifications are not shown',
  Redis:
    'in-flight tasks, stalls, services and unserved queues are not shown; stuck operations only by the database',
} as const;

/** `ccat-recovery status [--limit N]`. */
export function statusCommand(cli: CliContext) {
  return new Command('status')
    .summary(
      'what is stuck and why, unserved queues, operations by type and status, notifications, in-flight tasks, services',
    )
    .description(
      `A warning per queue whose waiting (pending or scheduled) work no live worker serves; the operations stuck now, with type, id, attempt, age, worker and why (in_progress past its heartbeat deadline, progress stopped, or silent with no heartbeat; scheduled and unclaimed past monitor.scheduleTimeoutMs; waiting in an unserved queue), in-progress ones first, then the longest waiting; operation counts by type and status and undelivered notifications by level (PostgreSQL); in-flight tasks with heartbeat age and progress, tasks stalled now and services alive or dead with the queues they serve (Redis). Read-only. When Redis is down the database part is still shown, with a warning, and the exit code is 3.`,
    )
    .option(
      '--limit <N>',
      'in-flight, stalled and stuck rows listed (1 to 1000)',
      integerIn('limit', 1, 1000),
      20,
    )
    .action((options, command) =>
      cli.run(command, async ({ config, json, out }) => {
        const status = await withSources(config, (db, redis) =>
          readStatus({
            db,
            redis,
            keyPrefix: config.keyPrefix,
            limit: options.limit,
            livenessTimeoutMs: config.monitor.livenessTimeoutMs,
            scheduleTimeoutMs: config.monitor.scheduleTimeoutMs,
          }),
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
