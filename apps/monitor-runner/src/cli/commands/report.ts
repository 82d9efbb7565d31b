// `report`: how well recovery worked over a window (admin/report.ts). What each figure means is
// defined once (DEFINITIONS) and shown in the help, under the text report and in the JSON.
import { Command } from '@commander-js/extra-typings';
import { DEFINITIONS, recoveryReport } from '../../admin/report.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT } from '../errors.js';
import { sinceOption } from '../options.js';
import { writeJson } from '../output.js';
import { renderReport } from '../render/report.js';

/** `ccat-recovery report [--since D]`: exit 0 also with failed notifications (a WARNING line). */
export function reportCommand(cli: CliContext) {
  return new Command('report')
    .summary('recovery success rate, retries per completed operation, stalls, notifications')
    .description(
      [
        'How well recovery worked over the window (database clock). Failed notifications are flagged with a WARNING line.',
        `Recovery success rate: ${DEFINITIONS.recoverySuccessRate}.`,
        `Retries per completed operation: ${DEFINITIONS.retriesPerCompletedOperation}.`,
        `Stalls recovered / exhausted: ${DEFINITIONS.stallsRecovered}; ${DEFINITIONS.stallsExhausted}.`,
        `Notifications: ${DEFINITIONS.notifications}.`,
      ].join('\n\n'),
    )
    .addOption(sinceOption())
    .action(({ since }, command) =>
      cli.run(command, async ({ config, json, out }) => {
        const report = await withDatabase(config, QUERIES, ({ db }) =>
          recoveryReport(db, { since: since.text, sinceMs: since.ms }),
        );
        if (json) writeJson(out, { command: 'report', ...report });
        else out.out(renderReport(report));
        return EXIT.ok;
      }),
    );
}
