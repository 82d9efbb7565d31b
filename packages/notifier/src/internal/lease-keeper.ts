// Keeps the leases of one relay pass alive while their rows are delivered, and tells each send
// when to stop. One renewal round trip per interval covers every row of the pass still in flight.
import type { Logger } from 'pino';
import { describeThrown } from '@ccat/errors';
import type { OutboxLease, OutboxStore } from '../outbox-store.js';

/** Why a row's sends are aborted. */
class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
}

export interface LeaseKeeperOptions {
  readonly store: Pick<OutboxStore, 'renew'>;
  readonly leaseMs: number;
  /** When the claim that took these leases was sent (`performance.now()`): the leases start no earlier. */
  readonly claimedAt: number;
  /** Aborts every row (relay shutdown). */
  readonly stop: AbortSignal;
  readonly logger: Logger;
}

/**
 * The leases of one pass. Every `leaseMs / 3` it renews the leases of the rows not yet done in one
 * `store.renew` call. A row's signal aborts when its lease is lost (the renewal did not return it:
 * another relay has the row, so this one must send nothing more and record nothing), when its lease
 * is about to lapse without a successful renewal (at 80 % of the lease counted from the start of the
 * last renewal that reached the store, so the abort and the socket close happen before any other
 * relay can claim the row), or on relay shutdown.
 */
export interface LeaseKeeper {
  signal(id: string): AbortSignal;
  /**
   * Aborts when the row's lease is lost or about to lapse (as `signal`), but not on shutdown: until
   * then a fenced write of the row's outcome (record, settle) is worth retrying.
   */
  held(id: string): AbortSignal;
  /** True once a renewal said the row's lease is gone. */
  lost(id: string): boolean;
  /** The row is settled (or given up): no more renewals for it. */
  done(id: string): void;
  /** Stops the timers (safe twice). */
  close(): void;
}

/** Starts keeping `leases` (claimed at `claimedAt`). */
export function keepLeases(leases: readonly OutboxLease[], options: LeaseKeeperOptions): LeaseKeeper {
  const { store, leaseMs, stop, logger } = options;
  const safeFor = leaseMs * 0.8;
  const rows = new Map(
    leases.map((lease) => [
      lease.id,
      { lease, controller: new AbortController(), held: new AbortController(), lost: false },
    ]),
  );
  let deadline = options.claimedAt + safeFor;
  let closed = false;
  let renewTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;

  const abortAll = (reason: Error, leaseEnds = true): void => {
    for (const r of rows.values()) {
      r.controller.abort(reason);
      if (leaseEnds) r.held.abort(reason);
    }
  };
  const onStop = (): void => abortAll(new LeaseLostError('the relay is shutting down'), false);
  stop.addEventListener('abort', onStop, { once: true });
  if (stop.aborted) onStop();

  const armDeadline = (): void => {
    if (deadlineTimer !== undefined) clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(
      () => {
        if (closed) return;
        logger.warn({ rows: rows.size }, 'outbox lease about to lapse without renewal; aborting its sends');
        abortAll(new LeaseLostError('the outbox lease could not be renewed in time'));
      },
      Math.max(0, deadline - performance.now()),
    );
  };

  const renew = async (): Promise<void> => {
    // Rows whose sends were stopped by a shutdown are still renewed while their outcome is written.
    const live = [...rows.values()].filter((r) => !r.held.signal.aborted);
    if (live.length === 0) return;
    const startedAt = performance.now();
    try {
      const held = new Set(
        await store.renew(
          live.map((r) => r.lease),
          leaseMs,
        ),
      );
      if (closed) return;
      for (const r of live)
        if (!held.has(r.lease.id) && rows.has(r.lease.id)) {
          r.lost = true;
          const reason = new LeaseLostError('the outbox lease was taken over by another relay');
          r.controller.abort(reason);
          r.held.abort(reason);
        }
      deadline = startedAt + safeFor;
      armDeadline();
    } catch (e) {
      // The store is unreachable: the deadline stays, and sends stop there if no renewal gets through.
      logger.warn({ err: describeThrown(e, 500) }, 'outbox lease renewal failed; trying again');
    }
  };

  const schedule = (): void => {
    if (closed) return;
    renewTimer = setTimeout(() => {
      renewTimer = undefined;
      void renew().finally(schedule);
    }, leaseMs / 3);
  };

  armDeadline();
  schedule();

  return {
    signal: (id) => rows.get(id)?.controller.signal ?? AbortSignal.abort(new LeaseLostError('unknown lease')),
    held: (id) => rows.get(id)?.held.signal ?? AbortSignal.abort(new LeaseLostError('unknown lease')),
    lost: (id) => rows.get(id)?.lost ?? true,
    done(id) {
      rows.delete(id);
    },
    close() {
      if (closed) return;
      closed = true;
      stop.removeEventListener('abort', onStop);
      if (renewTimer !== undefined) clearTimeout(renewTimer);
      if (deadlineTimer !== undefined) clearTimeout(deadlineTimer);
      rows.clear();
    },
  };
}
