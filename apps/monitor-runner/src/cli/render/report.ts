// The text form of `report`: the headline figures, warnings, a table by operation type, the events
// of the window, and what each figure means.
import type { RecoveryReport } from '../../admin/report.js';
import { formatPercent, formatRatio, formatTime } from '../../format.js';
import { formatTable, right } from './table.js';

/** The report as text for a terminal. */
export function renderReport(r: RecoveryReport): string {
  const s = r.recoverySuccessRate;
  const rp = r.retriesPerCompletedOperation;
  const n = r.notifications;
  const lines = [
    `Recovery report for the last ${r.since} (${formatTime(r.windowStart)} to ${formatTime(r.windowEnd)})`,
    '',
    `Stalled or failed in the window:  ${s.affected} operations; ${s.completed} completed since, ${s.failed} failed for good, ${s.inFlight} still in flight (waiting or running again: not failures)${s.missing > 0 ? `, ${s.missing} no longer present` : ''}`,
    `Recovery success rate:            ${formatPercent(s.value)}  (${s.completed} completed of the ${s.settled} of them that settled${s.settled === 0 ? ': none yet' : ''})`,
    `Retries per completed operation:  ${formatRatio(rp.value)}  (${rp.retries} automatic retries of operations now completed / ${rp.completedInWindow} operations completed in the window)`,
    `Stalls recovered:                 ${r.stalls.recovered}`,
    `Stalls exhausted:                 ${r.stalls.exhausted}`,
    `Notifications:                    ${n.sent} sent, ${n.failed} failed, ${n.digested} digested, ${n.pending} pending`,
    ...r.warnings,
    '',
    'By operation type',
    formatTable(
      [
        'TYPE',
        right('AFFECTED'),
        right('COMPLETED'),
        right('FAILED'),
        right('IN FLIGHT'),
        right('SUCCESS OF SETTLED'),
        right('DONE IN WINDOW'),
        right('RETRIES'),
        right('RETRIES/DONE'),
      ],
      r.byType.map((t) => [
        t.type,
        String(t.affected),
        String(t.completed),
        String(t.failed),
        String(t.inFlight),
        formatPercent(t.recoverySuccessRate),
        String(t.completedInWindow),
        String(t.retriesOfCompleted),
        formatRatio(t.retriesPerCompletedOperation),
      ]),
    ),
    '',
  ];
  const events = Object.entries(r.events);
  if (events.length === 0) lines.push('Events in the window: none');
  else
    lines.push(
      'Events in the window',
      formatTable(
        ['EVENT', right('COUNT')],
        events.map(([event, count]) => [event, String(count)]),
      ),
    );
  const d = r.definitions;
  lines.push(
    '',
    'What the figures mean',
    `  recovery success rate: ${d.recoverySuccessRate}`,
    `  retries per completed operation: ${d.retriesPerCompletedOperation}`,
    `  stalls recovered: ${d.stallsRecovered}`,
    `  stalls exhausted: ${d.stallsExhausted}`,
    `  notifications: ${d.notifications}`,
  );
  return lines.join('\n');
}
