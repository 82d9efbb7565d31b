// `failures`: failure events over a window, grouped by error code and operation type, with the most
// recent examples of each group: "what is going wrong, and where do I look".
import {
  FAILURE_EVENTS,
  failuresByErrorCode,
  type Database,
  type FailureGroup,
  type OperationType,
} from '@ccat/db';
import type { Kysely } from 'kysely';
import type { CommandSpec, FlagValues } from './command-spec.js';
import { EXIT, type ExitCode } from './exit-codes.js';
import {
  durationFlag,
  errorCodeFlag,
  integerFlag,
  noPositionals,
  operationTypeArg,
  stringFlag,
} from './flags.js';
import { formatTime, plural } from './format.js';
import { writeJson, type CommandIo } from './output.js';
import { formatTable } from './table.js';

export const failuresSpec: CommandSpec = {
  name: 'failures',
  summary: 'failure events grouped by error code, with example operations',
  options: {
    since: { type: 'string' },
    type: { type: 'string' },
    code: { type: 'string' },
    examples: { type: 'string' },
  },
  usage: `usage: ccat-recovery failures [--since 24h] [--type TYPE] [--code CODE] [--examples N] [--json]

Failure events (${FAILURE_EVENTS.join(', ')}) recorded in the window, grouped by error code and
operation type, most frequent first, with the most recent example operations of each group.

  --since D      window length, e.g. 30m, 24h, 7d (default 24h)
  --type TYPE    only this operation type
  --code CODE    only this error code, e.g. CHECKSUM_MISMATCH
  --examples N   examples per group (default 3, 0 to 20)`,
};

export interface FailuresOptions {
  readonly since: string;
  readonly sinceMs: number;
  readonly type: OperationType | undefined;
  readonly code: string | undefined;
  readonly examples: number;
}

export function parseFailuresArgs(values: FlagValues, positionals: readonly string[]): FailuresOptions {
  noPositionals(failuresSpec, positionals);
  const since = durationFlag(failuresSpec, values, 'since', '24h')!;
  const type = stringFlag(values, 'type');
  return {
    since: since.text,
    sinceMs: since.ms,
    type: type === undefined ? undefined : operationTypeArg(failuresSpec, type),
    code: errorCodeFlag(failuresSpec, values),
    examples: integerFlag(failuresSpec, values, 'examples', { min: 0, max: 20, dflt: 3 }),
  };
}

export interface FailuresDeps extends CommandIo {
  readonly db: Kysely<Database>;
}

function render(options: FailuresOptions, groups: readonly FailureGroup[], total: number): string {
  const filters = [options.type && `type ${options.type}`, options.code && `code ${options.code}`].filter(
    Boolean,
  );
  const scope = `in the last ${options.since}${filters.length > 0 ? ` (${filters.join(', ')})` : ''}`;
  if (groups.length === 0) return `No failure events ${scope}.`;
  const lines = [
    `Failure events ${scope}: ${plural(total, 'event')} in ${plural(groups.length, 'group')}`,
    formatTable(
      [
        { title: 'ERROR CODE' },
        { title: 'TYPE' },
        { title: 'EVENTS', align: 'right' },
        { title: 'FIRST' },
        { title: 'LAST' },
        { title: 'EXAMPLE IDS', maxWidth: 40 },
      ],
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
  if (options.examples > 0) {
    lines.push('', 'Examples, newest first:');
    for (const g of groups) {
      lines.push(`  ${g.errorCode} ${g.operationType}`);
      lines.push(
        formatTable(
          [
            { title: 'ID', align: 'right' },
            { title: 'ATTEMPT', align: 'right' },
            { title: 'EVENT' },
            { title: 'AT' },
            { title: 'MESSAGE', maxWidth: 80 },
          ],
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

/** Prints the groups; exit 0 also when there are none (an empty window is an answer). */
export async function runFailures(deps: FailuresDeps, options: FailuresOptions): Promise<ExitCode> {
  const groups = await failuresByErrorCode(deps.db, {
    sinceMs: options.sinceMs,
    examples: options.examples,
    ...(options.type !== undefined && { type: options.type }),
    ...(options.code !== undefined && { code: options.code }),
  });
  const total = groups.reduce((n, g) => n + g.count, 0);
  if (deps.json) {
    writeJson(deps.out, {
      command: 'failures',
      since: options.since,
      sinceMs: options.sinceMs,
      type: options.type ?? null,
      code: options.code ?? null,
      events: [...FAILURE_EVENTS],
      totalEvents: total,
      // Spelled out, not spread: this document's keys are a contract with scripts.
      groups: groups.map((g) => ({
        errorCode: g.errorCode,
        operationType: g.operationType,
        count: g.count,
        firstAt: g.firstAt,
        lastAt: g.lastAt,
        examples: g.examples.map((x) => ({
          operationId: x.operationId,
          attempt: x.attempt,
          event: x.event,
          message: x.message,
          at: x.at,
        })),
      })),
    });
  } else {
    deps.out.out(render(options, groups, total));
  }
  return EXIT.ok;
}
