// The demo's closing report: final states, decisions, notifications, integrity, and the checks
// that decide the exit code.
import { OPERATION_TYPES } from '@ccat/db';
import { formatDuration } from '@ccat/errors';
import type { ReceivedMail } from '@ccat/test-support';
import type { ChaosLog } from './chaos.js';
import type { IntegrityReport } from './integrity.js';
import type { DemoStats } from './stats.js';

export interface ReportInput {
  readonly stats: DemoStats;
  readonly integrity: IntegrityReport;
  readonly once: { completions: number; problems: string[] };
  readonly notified: { failed: number; notified: number; problems: string[] };
  readonly mails: readonly ReceivedMail[];
  readonly chaos: ChaosLog | undefined;
  readonly restarts: number;
  readonly elapsedMs: number;
  /** The soak: every check decides the exit code, not only finality and integrity. */
  readonly strict: boolean;
  readonly timedOut: boolean;
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

/** Prints the report; true when the run passed. */
export function printReport(say: (line?: string) => void, r: ReportInput): boolean {
  const { stats } = r;
  say(`Report after ${formatDuration(r.elapsedMs)}`);
  say();
  say(`  ${'operation type'.padEnd(28)}${pad('completed', 10)}${pad('failed', 8)}${pad('not final', 11)}`);
  for (const t of OPERATION_TYPES) {
    const c = stats.stages[t];
    say(`  ${t.padEnd(28)}${pad(c.done, 10)}${pad(c.failed, 8)}${pad(c.pending + c.running, 11)}`);
  }
  const e = (k: string) => stats.events[k] ?? 0;
  const reasons = Object.entries(stats.stallReasons)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  say();
  say(
    `  decisions: ${e('retry_scheduled')} retries scheduled, ${e('permanent_failure')} permanent failures, ${e('stall_recovered')} stalls recovered${reasons ? ` (${reasons})` : ''},`,
  );
  say(
    `             ${e('stall_exhausted')} stalled too often, ${e('lease_lost')} late workers stopped by the fencing (lease lost), ${e('released')} released on shutdown, ${e('redispatched')} jobs re-dispatched`,
  );
  say(`  worker processes restarted after crashes and kills: ${r.restarts}`);
  const n = stats.notifications;
  say();
  say(
    `  notifications: ${n['sent'] ?? 0} sent, ${n['digested'] ?? 0} folded into digests, ${n['failed'] ?? 0} failed, ${n['pending'] ?? 0} pending; ${r.mails.length} mails received by the local SMTP server`,
  );
  const digests = r.mails.filter((m) => /digest|\d+ .* in \d+/i.test(m.subject));
  for (const m of [...r.mails.filter((x) => !digests.includes(x)).slice(0, 6), ...digests.slice(0, 4)])
    say(`    ✉ ${m.subject}`);
  if (r.mails.length > 10) say(`    … and ${r.mails.length - 10} more`);
  if (r.chaos) {
    const c = r.chaos;
    say();
    say(
      `  chaos: ${c.kills} workers killed, ${c.freezes} frozen and resumed, ${c.redisRestarts} Redis restart, ${c.smtpOutages} SMTP outage, ${c.droppedConnections} PostgreSQL connections dropped`,
    );
    for (const a of c.actions) say(`    ${a}`);
  }
  say();
  say(
    `  integrity: ${r.integrity.archives} archived packages, ${r.integrity.archivedFiles} files byte-identical to their sources; ${r.integrity.keptSourceFiles} files of unarchived packages still at their source`,
  );
  const checks: [string, boolean, string[], boolean][] = [
    [
      'every operation is final',
      stats.nonFinal === 0 && !r.timedOut,
      stats.nonFinal > 0 ? [`${stats.nonFinal} operations not final`] : [],
      true,
    ],
    [
      'every archived file matches its source, nothing lost, nothing deleted unverified',
      r.integrity.problems.length === 0,
      r.integrity.problems,
      true,
    ],
    [
      `no operation completed twice (${r.once.completions} completions in the event log)`,
      r.once.problems.length === 0,
      r.once.problems,
      r.strict,
    ],
    [
      `every FAILED operation has its ERROR notification delivered (${r.notified.notified} of ${r.notified.failed})`,
      r.notified.problems.length === 0,
      r.notified.problems,
      r.strict,
    ],
  ];
  say();
  let ok = true;
  for (const [label, pass, problems, decides] of checks) {
    say(`  ${pass ? '✓' : decides ? '✗' : '!'} ${label}`);
    for (const p of problems.slice(0, 10)) say(`      ${p}`);
    if (!pass && decides) ok = false;
  }
  say();
  say(ok ? 'RESULT: OK' : 'RESULT: FAILED');
  return ok;
}
