// Live progress in the terminal: redrawn in place on a TTY, a line every few seconds otherwise.
import { OPERATION_TYPES } from '@ccat/db';
import { formatDuration } from '@ccat/errors';
import type { DemoStats } from './stats.js';

export interface ProgressExtras {
  readonly elapsedMs: number;
  readonly mails: number;
  readonly workersAlive: number;
  readonly restarts: number;
  readonly lastEvent?: string;
}

const pad = (s: string | number, n: number) => String(s).padStart(n);

export function renderProgress(s: DemoStats, x: ProgressExtras): string[] {
  const e = (k: string) => s.events[k] ?? 0;
  const lines = [
    `${'stage'.padEnd(28)}${pad('pending', 9)}${pad('running', 9)}${pad('done', 7)}${pad('failed', 8)}`,
  ];
  for (const t of OPERATION_TYPES) {
    const c = s.stages[t];
    lines.push(`${t.padEnd(28)}${pad(c.pending, 9)}${pad(c.running, 9)}${pad(c.done, 7)}${pad(c.failed, 8)}`);
  }
  const stalls = Object.entries(s.stallReasons)
    .map(([r, n]) => `${r} ${n}`)
    .join(', ');
  lines.push(
    `retries ${e('retry_scheduled')} · stalls recovered ${e('stall_recovered')}${stalls ? ` (${stalls})` : ''} · exhausted ${e('stall_exhausted')} · lease lost ${e('lease_lost')} · released ${e('released')} · re-dispatched ${e('redispatched')}`,
  );
  const n = s.notifications;
  lines.push(
    `notifications: sent ${n['sent'] ?? 0}, digested ${n['digested'] ?? 0}, pending ${n['pending'] ?? 0}, failed ${n['failed'] ?? 0} · mails received ${x.mails} · workers alive ${x.workersAlive}, restarts ${x.restarts} · ${formatDuration(x.elapsedMs)}`,
  );
  if (x.lastEvent) lines.push(`last: ${x.lastEvent}`);
  return lines;
}

/** Prints frames: on a TTY each replaces the previous one. */
export function createProgressPrinter(out: NodeJS.WriteStream): {
  frame(lines: string[], summary: string): void;
  note(text: string): void;
  done(): void;
} {
  const tty = out.isTTY === true;
  let shown = 0;
  let lastPlain = 0;
  return {
    frame(lines, summary) {
      if (tty) {
        if (shown > 0) out.write(`\x1b[${shown}A`);
        for (const l of lines) out.write(`\x1b[2K${l.slice(0, (out.columns || 200) - 1)}\n`);
        shown = lines.length;
      } else if (Date.now() - lastPlain >= 5000) {
        lastPlain = Date.now();
        out.write(`${summary}\n`);
      }
    },
    note(text) {
      if (!tty) out.write(`  · ${text}\n`);
    },
    done() {
      shown = 0;
    },
  };
}

/** One line for logs and CI: totals over every stage, then the decision counts. */
export function summaryLine(s: DemoStats, x: ProgressExtras): string {
  const t = { pending: 0, running: 0, done: 0, failed: 0 };
  for (const c of Object.values(s.stages)) for (const k of Object.keys(t) as (keyof typeof t)[]) t[k] += c[k];
  const e = (k: string) => s.events[k] ?? 0;
  return `[${formatDuration(x.elapsedMs)}] operations: ${t.done} done, ${t.failed} failed, ${t.running} running, ${t.pending} pending · retries ${e('retry_scheduled')} · stalls recovered ${e('stall_recovered')} · lease lost ${e('lease_lost')} · mails ${x.mails} · restarts ${x.restarts}`;
}
