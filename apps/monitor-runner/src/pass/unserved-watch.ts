import { createPgOutboxStore, notifiedWithin, waitingByQueue } from '@ccat/db';
import { classifyError, eventLevel, formatDuration } from '@ccat/errors';
import { ServiceHealthReader } from '@ccat/heartbeat';
import { unservedByType, unservedQueues, type UnservedQueue } from '../admin/unserved-queues.js';
import { alertWindowMs } from '../config.js';
import type { PassContext } from './types.js';
import { monotonicNow } from './clock.js';

/**
 * Waiting work no live worker serves (admin/unserved-queues.ts), watched by the monitor: at most once per
 * `monitor.loopIntervalMs`, and again when a queue first seen unserved reaches the liveness bound
 * (the query counts the waiting rows per queue), it sets the gauge
 * `ccat_operations_unserved{operation_type}` and queues one `work_unserved` WARNING per queue that has
 * been unserved for at least `monitor.livenessTimeoutMs` (a worker restarting inside that bound is no
 * news) and was not announced within the notifier's dedup window (default 10 min when off): the
 * outbox is asked (`notifiedWithin`, dedup key `work_unserved:<queue>`), so replicas and restarts
 * announce a queue once per window too. Never throws: a failed check is logged and tried next pass.
 */
export class UnservedWatch {
  readonly #ctx: PassContext;
  /** Per queue: when this monitor first saw it unserved (forgotten when served again). */
  readonly #since = new Map<string, number>();
  #nextAt = 0;

  constructor(ctx: PassContext) {
    this.#ctx = ctx;
  }

  /** Checks when due (see the class comment). */
  async run(): Promise<void> {
    const { config, db, redis, metrics } = this.#ctx.deps;
    const now = monotonicNow();
    if (now < this.#nextAt) return;
    this.#nextAt = now + config.monitor.loopIntervalMs;
    let unserved: UnservedQueue[];
    try {
      const health = await new ServiceHealthReader({ redis, keyPrefix: config.keyPrefix }).list();
      unserved = unservedQueues(await waitingByQueue(db), health.services);
    } catch (e) {
      // Tried again soon, not after a whole loop interval.
      this.#nextAt = now + Math.min(config.monitor.loopIntervalMs, config.monitor.livenessTimeoutMs);
      this.#ctx.log.warn({ err: classifyError(e).message }, 'cannot check for unserved queues');
      return;
    }
    for (const [type, n] of Object.entries(unservedByType(unserved)))
      metrics.operationsUnserved.set({ operation_type: type }, n);
    const current = new Set(unserved.map((u) => u.queue));
    for (const q of this.#since.keys()) if (!current.has(q)) this.#since.delete(q);
    for (const u of unserved) {
      if (this.#ctx.closed()) return;
      const first = this.#since.get(u.queue);
      if (first === undefined) this.#since.set(u.queue, now);
      if (first === undefined || now - first < config.monitor.livenessTimeoutMs) {
        // Look again once it has been unserved for the bound, not a whole loop interval later
        // (5 min by default, which made the alert 5 to 10 min late).
        this.#nextAt = Math.min(this.#nextAt, (first ?? now) + config.monitor.livenessTimeoutMs);
        continue;
      }
      await this.#alert(u, now - first);
    }
  }

  async #alert(u: UnservedQueue, forMs: number): Promise<void> {
    const { config, db } = this.#ctx.deps;
    const windowMs = alertWindowMs(config);
    const dedupKey = `work_unserved:${u.queue}`;
    const waiting = u.pending + u.scheduled;
    try {
      if (await notifiedWithin(db, dedupKey, windowMs)) return;
      await createPgOutboxStore(db).enqueue({
        level: eventLevel('work_unserved'),
        eventKind: 'work_unserved',
        subject: `${waiting} ${u.operationType} operation${waiting === 1 ? '' : 's'} waiting: no live worker serves queue ${u.queue}`,
        // What was done and what to do: the catalogue's, shown once by every channel.
        body: `What: ${waiting} ${u.operationType} operations wait (${u.pending} pending, ${u.scheduled} scheduled) in queue ${u.queue}, and no live worker has served it for at least ${formatDuration(forMs)}.`,
        context: {
          queue: u.queue,
          operationType: u.operationType,
          pending: u.pending,
          scheduled: u.scheduled,
        },
        dedupKey,
      });
      this.#ctx.log.warn(
        { queue: u.queue, operationType: u.operationType, pending: u.pending, scheduled: u.scheduled },
        'work waiting in a queue no live worker serves; WARNING notification queued',
      );
    } catch (e) {
      this.#ctx.log.warn(
        { queue: u.queue, err: classifyError(e).message },
        'cannot queue the unserved-work notification; trying again next check',
      );
    }
  }
}
