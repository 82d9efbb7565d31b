// `report`: how well recovery worked over a window. What each figure means is defined once
// (DEFINITIONS in report-figures.ts) and shown in the help, under the text report and in the JSON.
import type { Database } from '@ccat/db';
import type { Kysely } from 'kysely';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import { durationFlag, noPositionals } from './flags.js';
import { writeJson, type CommandIo } from './output.js';
import { buildReport, DEFINITIONS } from './report-figures.js';
import { readReport } from './report-queries.js';
import { renderReport } from './report-text.js';

export const reportSpec: CommandSpec = {
  name: 'report',
  summary: 'recovery success rate, retries per completed operation, stalls, notifications',
  options: { since: { type: 'string' } },
  usage: `usage: ccat-recovery report [--since 24h] [--json]

How well recovery worked over the window (database clock):
  recovery success rate             ${DEFINITIONS.recoverySuccessRate}
  retries per completed operation   ${DEFINITIONS.retriesPerCompletedOperation}
  stalls recovered / exhausted      stall_recovered / stall_exhausted events in the window
  notifications                     ${DEFINITIONS.notifications}
Failed notifications are flagged with a WARNING line.

  --since D   window length, e.g. 30m, 24h, 7d (default 24h)`,
};

export interface ReportOptions {
  readonly since: string;
  readonly sinceMs: number;
}

export function parseReportArgs(values: FlagValues, positionals: readonly string[]): ReportOptions {
  noPositionals(reportSpec, positionals);
  const since = durationFlag(reportSpec, values, 'since', '24h')!;
  return { since: since.text, sinceMs: since.ms };
}

export interface ReportDeps extends CommandIo {
  readonly db: Kysely<Database>;
}

/** Prints the report. Failed notifications are a WARNING in it, not an error: the exit code is 0. */
export async function runReport(deps: ReportDeps, options: ReportOptions): Promise<ExitCode> {
  const report = buildReport(options, await readReport(deps.db, options.sinceMs));
  if (deps.json) writeJson(deps.out, report);
  else deps.out.out(renderReport(report));
  return EXIT.ok;
}
