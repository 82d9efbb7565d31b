// The fault suite's own checks (beside the demo's integrity.ts, which it reuses). Each returns the
// problems it found: an empty list means the property holds.
import type { Database } from '@ccat/db';
import type { ReceivedMail } from '@ccat/test-support';
import { sql, type Kysely } from 'kysely';
import type { ProcessExit } from '../supervisor.js';

const describeEnd = (e: ProcessExit) => (e.signal !== null ? e.signal : `exit ${e.code}`);

/**
 * No process ended that the suite did not end, and every one it ended with SIGTERM left in time,
 * with exit 0. A SIGKILL the supervisor sent on purpose (a chaos kill) is not a problem; one it had
 * to send because SIGTERM was not enough is. `t0` (ms since the epoch) makes the times relative.
 */
export function checkExits(exits: readonly ProcessExit[], t0: number): string[] {
  const problems: string[] = [];
  for (const e of exits) {
    const at = `+${((e.at - t0) / 1000).toFixed(1)} s`;
    if (!e.requested)
      problems.push(`${e.name} (pid ${e.pid ?? '?'}) exited on its own at ${at} (${describeEnd(e)})`);
    else if (e.forced) problems.push(`${e.name} did not stop on SIGTERM in time and was killed at ${at}`);
    else if (e.signal === null && e.code !== 0)
      problems.push(`${e.name} stopped on SIGTERM with exit ${e.code} at ${at}`);
  }
  return problems;
}

/** pino's numeric level of `fatal`. */
const PINO_FATAL = 60;

/**
 * Lines at level `fatal` in the processes' JSON logs: the last-resort handlers of the apps log one
 * before exiting on an uncaught exception or unhandled rejection, and a start failure logs one too.
 * Lines that are not JSON (a crash's stack trace on stderr) are reported when they name an uncaught
 * error, so a process killed by one is seen even if it printed no fatal line.
 */
export function findFatalLines(logs: readonly { readonly name: string; readonly text: string }[]): string[] {
  const problems: string[] = [];
  for (const { name, text } of logs) {
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      let entry: unknown;
      try {
        entry = JSON.parse(line);
      } catch {
        if (/Unhandled '?error'? event|uncaught|unhandled rejection|^\s*\w*Error: /i.test(line))
          problems.push(`${name}: crash output: ${line.trim().slice(0, 200)}`);
        continue;
      }
      if (typeof entry !== 'object' || entry === null) continue;
      const e = entry as Record<string, unknown>;
      if (e['level'] === PINO_FATAL || e['level'] === 'fatal') {
        const code = typeof e['errorCode'] === 'string' ? ` [${e['errorCode']}]` : '';
        const err = typeof e['err'] === 'string' ? `: ${e['err']}` : '';
        problems.push(`${name}: fatal: ${String(e['msg'])}${err}${code}`.slice(0, 300));
      }
    }
  }
  return problems;
}

/** What {@link checkDeliveredOnce} counted, and its problems. */
export interface DeliveryReport {
  /** Outbox rows. */
  readonly notifications: number;
  /** Rows delivered by a mail of their own, exactly once. */
  readonly deliveredOnce: number;
  /** Rows folded into a digest (delivered by the digest's mail). */
  readonly digested: number;
  readonly problems: string[];
}

/**
 * Every notification delivered exactly once, counted where it lands: the mails the SMTP server
 * accepted, by their `X-CCAT-Notification-Id`, against the outbox. Every level is routed to email in
 * the suite, so each row not folded into a digest must have exactly one mail, and a digested row
 * none of its own (its digest row is counted instead). A mail naming no outbox row, or none at all,
 * is a problem; so is a row whose attempts passed `maxAttempts`. `t0` (ms since the epoch) makes the
 * times of repeated deliveries relative, to match them with the suite's timeline.
 */
export async function checkDeliveredOnce(
  db: Kysely<Database>,
  mails: readonly ReceivedMail[],
  maxAttempts: number,
  t0 = 0,
): Promise<DeliveryReport> {
  const rows = await sql<{ id: string; status: string; attempts: number; last_error: string | null }>`
    SELECT id::text, status, attempts, last_error FROM notifications ORDER BY id`.execute(db);
  const perId = new Map<string, number>();
  const times = new Map<string, string[]>();
  const problems: string[] = [];
  for (const m of mails) {
    if (m.notificationId === undefined) {
      problems.push(`a mail without X-CCAT-Notification-Id: "${m.subject.slice(0, 80)}"`);
      continue;
    }
    perId.set(m.notificationId, (perId.get(m.notificationId) ?? 0) + 1);
    times.set(m.notificationId, [
      ...(times.get(m.notificationId) ?? []),
      `+${((m.receivedAt - t0) / 1000).toFixed(1)} s`,
    ]);
  }
  const known = new Set(rows.rows.map((r) => r.id));
  for (const id of perId.keys())
    if (!known.has(id)) problems.push(`mail for notification ${id}, which is not in the outbox`);
  let deliveredOnce = 0;
  let digested = 0;
  for (const r of rows.rows) {
    const n = perId.get(r.id) ?? 0;
    if (r.attempts > maxAttempts)
      problems.push(`notification ${r.id} attempted ${r.attempts} times (the limit is ${maxAttempts})`);
    if (r.status === 'digested') {
      digested++;
      if (n > 0) problems.push(`notification ${r.id} was folded into a digest but also mailed ${n} times`);
    } else if (n === 1) deliveredOnce++;
    else if (n === 0)
      problems.push(
        `notification ${r.id} (${r.status}, ${r.attempts} attempts${r.last_error ? `, ${r.last_error.slice(0, 80)}` : ''}) never delivered`,
      );
    else problems.push(`notification ${r.id} delivered ${n} times (${times.get(r.id)!.join(', ')})`);
  }
  return { notifications: rows.rows.length, deliveredOnce, digested, problems };
}

/** What the suite did, counted as it did it. */
export interface FaultCounts {
  readonly terminatedBackends: number;
  readonly postgresRestarts: number;
  readonly postgresOutages: number;
  readonly redisRestarts: number;
  /** Mails the SMTP server accepted while it was slow. */
  readonly slowMails: number;
  /** Messages it read and never answered while it hung. */
  readonly unansweredMails: number;
  /** Monitors (each running a relay) alive when the SMTP faults began; the suite runs two. */
  readonly relaysAtSmtpFaults: number;
  readonly interrupted: boolean;
}

/**
 * The suite proves nothing about a fault that did not happen or met no work: every fault ran as
 * planned, and the SMTP phases each had mail to slow down and to hang on.
 */
export function checkExercised(c: FaultCounts): string[] {
  const problems: string[] = [];
  if (c.interrupted) problems.push('the suite was interrupted');
  if (c.terminatedBackends === 0) problems.push('(a) terminated no backend');
  if (c.postgresRestarts < 3) problems.push(`(b) restarted PostgreSQL ${c.postgresRestarts} times, not 3`);
  if (c.postgresOutages < 1) problems.push('(b) never stopped PostgreSQL');
  if (c.redisRestarts < 1) problems.push('(c) never restarted Redis');
  if (c.relaysAtSmtpFaults < 2) problems.push(`(d) began with ${c.relaysAtSmtpFaults} of 2 relays running`);
  if (c.slowMails === 0) problems.push('(d) no mail was sent while SMTP was slow');
  if (c.unansweredMails === 0) problems.push('(d) no message was on its way while SMTP hung');
  return problems;
}
