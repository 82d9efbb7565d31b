// How well recovery worked over a window: the figures computed from the raw counts of
// report-queries.ts, every ratio in one place with its definition beside it (buildReport is pure, so
// the arithmetic is tested without a database).
import type { Database } from '@ccat/db';
import type { Kysely } from 'kysely';
import {
  readReport,
  RETRY_EVENTS,
  TROUBLE_EVENTS,
  type ReportData,
  type TypeFigures,
} from './report-queries.js';

/** numerator / denominator, or null when the denominator is zero. */
function ratio(numerator: number, denominator: number): number | null {
  return denominator === 0 ? null : numerator / denominator;
}

export const DEFINITIONS = {
  recoverySuccessRate: `of the operations with at least one ${TROUBLE_EVENTS.join(' / ')} event in the window that have settled since (completed or failed), those completed; operations still in flight (pending, scheduled, in progress) are not failures and not counted (n/a while none has settled)`,
  retriesPerCompletedOperation: `${RETRY_EVENTS.join(' + ')} events in the window of operations now completed, divided by the operations completed (finished_at) in the window (n/a when none completed)`,
  stallsRecovered: 'stall_recovered events in the window (a stalled task reset to pending)',
  stallsExhausted: 'stall_exhausted events in the window (stalled too often: marked failed)',
  notifications:
    'outbox rows created in the window, by their status now (digested: folded into a digest row)',
} as const;

/** One operation type's raw figures and its two ratios (null: nothing to divide by). */
export interface TypeReport extends TypeFigures {
  readonly recoverySuccessRate: number | null;
  readonly retriesPerCompletedOperation: number | null;
}

/** The report of one window (printed as JSON by `ccat-recovery report --json`, with `command`). */
export interface RecoveryReport {
  readonly since: string;
  readonly sinceMs: number;
  readonly windowStart: Date;
  readonly windowEnd: Date;
  readonly recoverySuccessRate: {
    /** completed / settled, null while none has settled: in flight is not failure. */
    readonly value: number | null;
    /** Operations that stalled or failed in the window. */
    readonly affected: number;
    /** Of those, completed + failed now. */
    readonly settled: number;
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
    recoverySuccessRate: ratio(t.completed, t.completed + t.failed),
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
      `WARNING: ${failed} notification${failed === 1 ? '' : 's'} failed delivery in the window (${ids}${failed > data.failedNotifications.length ? ', …' : ''}); see notifications.last_error`,
    );
  }
  return {
    since: options.since,
    sinceMs: options.sinceMs,
    windowStart: data.windowStart,
    windowEnd: data.windowEnd,
    recoverySuccessRate: {
      value: ratio(sum('completed'), sum('completed') + sum('failed')),
      affected: sum('affected'),
      settled: sum('completed') + sum('failed'),
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

/**
 * Reads and computes the report of the window [now − sinceMs, now] (database clock), in one
 * read-only snapshot. `since` is the window as the caller wrote it (`24h`), echoed in the report.
 */
export async function recoveryReport(
  db: Kysely<Database>,
  window: { since: string; sinceMs: number },
): Promise<RecoveryReport> {
  return buildReport(window, await readReport(db, window.sinceMs));
}
