// The figures of `report`, computed from the raw counts: every ratio in one place, with its
// definition beside it. Pure: no I/O, so the arithmetic is tested without a database.
import type { OperationType } from '@ccat/db';
import { plural, ratio } from './format.js';
import { RETRY_EVENTS, TROUBLE_EVENTS, type ReportData } from './report-queries.js';

export const DEFINITIONS = {
  recoverySuccessRate: `operations with at least one ${TROUBLE_EVENTS.join(' / ')} event in the window that are now completed, divided by all such operations (n/a when there are none)`,
  retriesPerCompletedOperation: `${RETRY_EVENTS.join(' + ')} events in the window of operations now completed, divided by the operations completed (finished_at) in the window (n/a when none completed)`,
  stallsRecovered: 'stall_recovered events in the window (a stalled task reset to pending)',
  stallsExhausted: 'stall_exhausted events in the window (stalled too often: marked failed)',
  notifications:
    'outbox rows created in the window, by their status now (digested: folded into a digest row)',
} as const;

export interface TypeReport {
  readonly type: OperationType;
  readonly affected: number;
  readonly completed: number;
  readonly failed: number;
  readonly inFlight: number;
  readonly missing: number;
  readonly recoverySuccessRate: number | null;
  readonly completedInWindow: number;
  readonly retriesOfCompleted: number;
  readonly retriesPerCompletedOperation: number | null;
}

/** The `report` document (the JSON as printed, and the text renderer's input). */
export interface RecoveryReport {
  readonly command: 'report';
  readonly since: string;
  readonly sinceMs: number;
  readonly windowStart: Date;
  readonly windowEnd: Date;
  readonly recoverySuccessRate: {
    /** completed / affected, null when nothing was affected. */
    readonly value: number | null;
    readonly affected: number;
    readonly completed: number;
    readonly failed: number;
    readonly inFlight: number;
    readonly missing: number;
  };
  readonly retriesPerCompletedOperation: {
    readonly value: number | null;
    readonly retries: number;
    readonly completedInWindow: number;
  };
  readonly stalls: { readonly recovered: number; readonly exhausted: number };
  readonly notifications: ReportData['notifications'];
  readonly byType: readonly TypeReport[];
  readonly events: ReportData['events'];
  readonly warnings: readonly string[];
  readonly definitions: typeof DEFINITIONS;
}

/** The report's figures from the raw counts: every ratio computed in one place. */
export function buildReport(options: { since: string; sinceMs: number }, data: ReportData): RecoveryReport {
  const byType = data.byType.map((t): TypeReport => ({
    ...t,
    recoverySuccessRate: ratio(t.completed, t.affected),
    retriesPerCompletedOperation: ratio(t.retriesOfCompleted, t.completedInWindow),
  }));
  const sum = (
    key:
      | 'affected'
      | 'completed'
      | 'failed'
      | 'inFlight'
      | 'missing'
      | 'retriesOfCompleted'
      | 'completedInWindow',
  ) => byType.reduce((n, t) => n + t[key], 0);
  const warnings: string[] = [];
  const failed = data.notifications.failed;
  if (failed > 0) {
    const ids = data.failedNotifications.map((n) => `#${n.id} ${n.eventKind}`).join(', ');
    warnings.push(
      `WARNING: ${plural(failed, 'notification')} failed delivery in the window (${ids}${failed > data.failedNotifications.length ? ', …' : ''}); see notifications.last_error`,
    );
  }
  return {
    command: 'report',
    since: options.since,
    sinceMs: options.sinceMs,
    windowStart: data.windowStart,
    windowEnd: data.windowEnd,
    recoverySuccessRate: {
      value: ratio(sum('completed'), sum('affected')),
      affected: sum('affected'),
      completed: sum('completed'),
      failed: sum('failed'),
      inFlight: sum('inFlight'),
      missing: sum('missing'),
    },
    retriesPerCompletedOperation: {
      value: ratio(sum('retriesOfCompleted'), sum('completedInWindow')),
      retries: sum('retriesOfCompleted'),
      completedInWindow: sum('completedInWindow'),
    },
    stalls: {
      recovered: data.events['stall_recovered'] ?? 0,
      exhausted: data.events['stall_exhausted'] ?? 0,
    },
    notifications: data.notifications,
    byType,
    events: data.events,
    warnings,
    definitions: DEFINITIONS,
  };
}
