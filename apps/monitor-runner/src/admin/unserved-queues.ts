// Waiting work that nothing serves: pending or scheduled rows whose queue (DESIGN §11) no live worker
// listens on. Shared by `status`, the dashboard and the monitor's alert and gauge.
import { OPERATION_TYPES, type OperationType, type WaitingQueue } from '@ccat/db';

/** What a reader needs of a service's health record (ServiceHealth from @ccat/heartbeat fits). */
export interface ServiceQueues {
  readonly serviceType: string;
  readonly serviceName: string;
  readonly status: string;
  /** Undefined: the record does not say (a worker from before workers published their queues). */
  readonly queues: readonly string[] | undefined;
}

/** One queue with waiting work and no live worker serving it. */
export interface UnservedQueue {
  readonly operationType: OperationType;
  readonly queue: string;
  readonly pending: number;
  readonly scheduled: number;
}

/**
 * The queues among `waiting` that no live worker serves, most waiting first. A worker serves a
 * queue when its health record is `alive` and lists that queue. A live worker whose record lists no
 * queues at all (`queues` undefined: written before workers published them) is taken to serve every
 * queue, so a rolling upgrade raises no false warning; then only "no live worker at all" is noticed.
 */
export function unservedQueues(
  waiting: readonly WaitingQueue[],
  services: readonly ServiceQueues[],
): UnservedQueue[] {
  const live = services.filter((s) => s.serviceType === 'worker' && s.status === 'alive');
  if (live.some((s) => s.queues === undefined)) return [];
  const served = new Set(live.flatMap((s) => s.queues ?? []));
  return waiting
    .filter((w) => w.pending + w.scheduled > 0 && !served.has(w.queue))
    .map((w) => ({
      operationType: w.operationType,
      queue: w.queue,
      pending: w.pending,
      scheduled: w.scheduled,
    }))
    .sort((a, b) => b.pending + b.scheduled - (a.pending + a.scheduled) || a.queue.localeCompare(b.queue));
}

/** Rows waiting in unserved queues per operation type, every type present (0 when none). */
export function unservedByType(unserved: readonly UnservedQueue[]): Record<OperationType, number> {
  const out = Object.fromEntries(OPERATION_TYPES.map((t) => [t, 0])) as Record<OperationType, number>;
  for (const u of unserved) out[u.operationType] += u.pending + u.scheduled;
  return out;
}

/** Warning lines shown at most; the rest are summed up in one more line. */
const MAX_WARNING_LINES = 20;

/**
 * `WARNING:` lines, one per unserved queue ("3 waiting (2 pending, 1 scheduled), no live worker
 * serves queue cha_raw_raw_data_package"), at most 20 and a line for the rest.
 */
export function unservedWarnings(unserved: readonly UnservedQueue[]): string[] {
  const lines = unserved
    .slice(0, MAX_WARNING_LINES)
    .map(
      (u) =>
        `WARNING: ${u.pending + u.scheduled} waiting (${u.pending} pending, ${u.scheduled} scheduled), no live worker serves queue ${u.queue}`,
    );
  const rest = unserved.slice(MAX_WARNING_LINES);
  if (rest.length > 0) {
    const n = rest.reduce((sum, u) => sum + u.pending + u.scheduled, 0);
    lines.push(`WARNING: and ${n} waiting in ${rest.length} more queues no live worker serves`);
  }
  return lines;
}
