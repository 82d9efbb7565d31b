// Over 300 lines: one row's delivery and the pass around it share the lease state.
// The outbox relay: claims due rows, delivers each to its routed targets, records every target's
// result as soon as it is known (a mail sent is never sent again because Slack failed), and retries
// with backoff. A channel outage delays notifications; it never loses one or holds up the others.
// Delivery is bounded by the lease (DESIGN §7): the leases of a pass are renewed while its rows are
// delivered, every send carries a signal that aborts it when its lease is lost or would lapse, and a
// relay that lost a lease sends nothing more for that row and records nothing.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { ConfigurationError, describeThrown, formatDuration, fullJitterDelayMs, sleep } from '@ccat/errors';
import pLimit from 'p-limit';
import { pino, type Logger } from 'pino';
import type { NotifierConfig } from './config.js';
import { timeoutsOverHalfLease } from './internal/lease-fit.js';
import { keepLeases, type LeaseKeeper } from './internal/lease-keeper.js';
import { untilAborted } from './internal/until-aborted.js';
import type { Notifier } from './notifier.js';
import type { ChannelResult, ClaimedNotification, OutboxStore, Settlement } from './outbox-store.js';

/** One target's delivery error kept in the row's per-target results, in characters. */
const MAX_TARGET_ERROR = 1000;
/** Every failed target's errors joined, as the row's last error, in characters (the store cuts at its own bound too). */
const MAX_DELIVERY_ERROR = 2000;

export interface OutboxRelayOptions {
  readonly store: OutboxStore;
  /** Routes and channels; not closed by the relay. */
  readonly notifier: Notifier;
  /** Default: silent. */
  readonly logger?: Logger;
  /** Names this relay in leases (default `relay-<host>-<pid>-<random>`). */
  readonly relayId?: string;
  /** Overrides of the notifier config's `relay`, `retry` and `dedup` sections. */
  readonly relay?: Partial<NotifierConfig['relay']>;
  readonly retry?: Partial<NotifierConfig['retry']>;
  readonly dedup?: Partial<NotifierConfig['dedup']>;
  /** For jitter (tests). */
  readonly random?: () => number;
  /** Called after every pass with what it did (metrics). Must not throw; errors are logged. */
  readonly onPass?: (result: RelayPassResult) => void;
}

/** What one pass did. */
export interface RelayPassResult {
  readonly claimed: number;
  /** Rows folded into digests by this pass's claim. */
  readonly digested: number;
  readonly sent: number;
  readonly failed: number;
  readonly retried: number;
  /** Rows given back unattempted (rate limit, shutdown, lease nearly over). */
  readonly deferred: number;
  /** Rows another relay took over before this one settled them. */
  readonly leaseLost: number;
  /** Rows the claim marked failed: their attempts were used up by relays that never settled. */
  readonly exhausted: number;
  /** The claim failed (store unreachable); the error is logged. */
  readonly claimFailed: boolean;
}

export interface OutboxRelay extends AsyncDisposable {
  readonly id: string;
  /** Starts the polling loop (idempotent; nothing after close). */
  start(): void;
  /** One pass now, after any pass in progress. Never throws. After close it does nothing. */
  runOnce(): Promise<RelayPassResult>;
  /** Stops polling, lets the pass in progress finish within shutdownTimeoutMs (safe twice). */
  close(): Promise<void>;
}

type Counters = { -readonly [K in keyof RelayPassResult]: RelayPassResult[K] };
/**
 * Retries of an outbox write (settle, renew) while the row's lease holds: the one backoff (@ccat/errors
 * `fullJitterDelayMs`), first delay up to 100 ms, none over 1 s, so a store that comes back is used
 * within about a second.
 */
const PERSIST_BACKOFF = { baseMs: 100, maxMs: 1000 } as const;

const empty = (): Counters => ({
  claimed: 0,
  digested: 0,
  sent: 0,
  failed: 0,
  retried: 0,
  deferred: 0,
  leaseLost: 0,
  exhausted: 0,
  claimFailed: false,
});

/**
 * Creates a relay over an outbox store. Call start() for the loop, or runOnce() for one pass.
 * Throws a ConfigurationError when `options.relay.leaseMs` is too short for the notifier's channel
 * timeouts (each must be at most half the lease; the notifier's own config is checked at parse).
 */
export function createOutboxRelay(options: OutboxRelayOptions): OutboxRelay {
  const { store, notifier } = options;
  const relayCfg = { ...notifier.config.relay, ...options.relay };
  const retryCfg = { ...notifier.config.retry, ...options.retry };
  const dedupCfg = { ...notifier.config.dedup, ...options.dedup };
  const misfits = timeoutsOverHalfLease(notifier.config, relayCfg.leaseMs);
  if (misfits.length > 0)
    throw new ConfigurationError(
      `invalid outbox relay options:\n${misfits.map((m) => `relay.leaseMs: ${m.message}`).join('\n')}`,
      { context: { problems: misfits.map((m) => m.message) } },
    );
  const id = options.relayId ?? `relay-${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ relayId: id });
  const random = options.random ?? Math.random;
  const stop = new AbortController();

  let started = false;
  let closing: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let chain: Promise<unknown> = Promise.resolve();

  /**
   * A fenced write of a row's outcome (`store.recordChannel` / `store.settle`), retried with a short
   * backoff (100 ms doubling to 1 s) while the row's lease holds (`held`: not lost, not about to lapse;
   * a shutdown does not stop it). A store that is briefly unreachable after a channel accepted a
   * message must not make the row come back and be sent again while this relay could still have
   * recorded it. The first attempt is made even when the lease already ran out. Returns the write's
   * answer, or `undefined` when the lease ran out before a write got through (an attempt still in
   * flight then may yet land: it is fenced on the lease token, so it is harmless either way).
   */
  async function persist<T>(
    held: AbortSignal,
    what: string,
    log: Logger,
    write: () => Promise<T>,
  ): Promise<T | undefined> {
    for (let attempt = 1; ; attempt++) {
      // The first attempt is made even after the lease ran out (a relay that was frozen): the write
      // is fenced on the lease token, so it lands only if no other relay has claimed the row since,
      // and then it spares that row a second send.
      if (attempt > 1 && held.aborted) return undefined;
      try {
        const outcome =
          attempt === 1 && held.aborted
            ? { aborted: false as const, value: await write() }
            : await untilAborted(write(), held);
        if (outcome.aborted) return undefined;
        if (attempt > 1) log.info({ attempts: attempt }, `outbox ${what} written after a retry`);
        return outcome.value;
      } catch (e) {
        if (attempt === 1 || attempt % 10 === 0)
          log.warn(
            { err: describeThrown(e, 500), attempt },
            `outbox ${what} failed; retrying while the row's lease holds`,
          );
      }
      if (await sleep(fullJitterDelayMs(attempt, PERSIST_BACKOFF, random), held)) return undefined;
    }
  }

  async function settle(
    row: ClaimedNotification,
    s: Settlement,
    stats: Counters,
    held: AbortSignal,
    log: Logger,
  ): Promise<void> {
    const settled = await persist(held, 'settle', log, () => store.settle(row.lease, s));
    if (settled === undefined) {
      stats.leaseLost++;
      log.error(
        { settlement: s.kind },
        'outbox settle not written before the lease ran out (store unreachable or relay stalled); the row comes back after its lease',
      );
      return;
    }
    if (!settled) {
      stats.leaseLost++;
      logger.warn(
        { notificationId: row.notification.id },
        'outbox lease lost before settling; another relay has the row',
      );
      return;
    }
    switch (s.kind) {
      case 'sent':
        stats.sent++;
        break;
      case 'failed':
        stats.failed++;
        break;
      case 'retry':
        stats.retried++;
        break;
      case 'release':
        stats.deferred++;
        break;
    }
  }

  async function deliverRow(row: ClaimedNotification, leases: LeaseKeeper, stats: Counters): Promise<void> {
    const n = row.notification;
    const log = logger.child({ notificationId: n.id, eventKind: n.eventKind });
    const held = leases.held(row.lease.id);
    const lost = (when: string): boolean => {
      if (!leases.lost(row.lease.id)) return false;
      stats.leaseLost++;
      log.warn(`outbox lease lost ${when}; another relay has the row, nothing more is sent or recorded`);
      return true;
    };
    try {
      const message =
        row.digest === undefined ? { notification: n } : { notification: n, digest: row.digest };
      const results: Record<string, ChannelResult> = { ...row.channelResults };
      const retryErrors: string[] = [];
      let retryAfterMs = 0;
      let deferMs: number | undefined;
      const targets = notifier.targets(n);
      for (const target of targets) {
        const before = results[target.key];
        if (before?.status === 'sent' || before?.status === 'failed') continue;
        const signal = leases.signal(row.lease.id);
        if (signal.aborted) {
          if (lost('before a send')) return;
          // Shutting down, or the lease could not be renewed: give the row back untried.
          deferMs = 0;
          break;
        }
        const outcome = await notifier.deliverTo(target, message, { wait: false, signal });
        if (lost('during a send')) return;
        if (outcome.status !== 'sent' && signal.aborted && stop.signal.aborted) {
          // The shutdown cut this send short: that says nothing about the channel, so the row goes
          // back untried (its attempt returned, its last error kept) rather than recording the abort.
          deferMs = 0;
          break;
        }
        if (outcome.status === 'deferred') {
          deferMs = Math.min(deferMs ?? Infinity, outcome.retryAfterMs);
          continue;
        }
        const result: ChannelResult = {
          status: outcome.status === 'sent' ? 'sent' : outcome.status === 'failed' ? 'failed' : 'retrying',
          at: new Date().toISOString(),
          attempts: (before?.attempts ?? 0) + 1,
          ...(outcome.status !== 'sent' && {
            error: outcome.error.message.slice(0, MAX_TARGET_ERROR),
            code: outcome.error.code,
          }),
        };
        results[target.key] = result;
        const recorded = await persist(held, 'channel result', log, () =>
          store.recordChannel(row.lease, target.key, result),
        );
        if (recorded === undefined) {
          stats.leaseLost++;
          log.error(
            { target: target.key, status: result.status },
            'outbox channel result not written before the lease ran out (store unreachable or relay stalled); the row comes back after its lease',
          );
          return;
        }
        if (!recorded) {
          stats.leaseLost++;
          log.warn('outbox lease lost during delivery; another relay has the row');
          return;
        }
        if (outcome.status === 'retry') {
          retryErrors.push(outcome.error.message);
          retryAfterMs = Math.max(retryAfterMs, outcome.retryAfterMs ?? 0);
          log.warn(
            { target: target.key, code: outcome.error.code, attempt: row.attempts },
            outcome.error.message,
          );
        } else if (outcome.status === 'failed') {
          log.error({ target: target.key, code: outcome.error.code }, outcome.error.message);
        }
      }
      if (lost('before settling')) return;

      if (retryErrors.length > 0) {
        const error = retryErrors.join('; ').slice(0, MAX_DELIVERY_ERROR);
        if (row.attempts >= retryCfg.maxAttempts && n.level === 'ERROR') {
          // An ERROR is never given up for lack of attempts (DESIGN §7): it stays pending, visible as
          // undelivered, and is tried again on the longest backoff while its channel is down.
          log.error(
            { attempts: row.attempts, targets: summarize(results), retryInMs: retryCfg.maxMs },
            `ERROR notification still undelivered after ${row.attempts} attempts; retrying every ${formatDuration(retryCfg.maxMs)}`,
          );
          await settle(
            row,
            { kind: 'retry', delayMs: Math.max(retryCfg.maxMs, retryAfterMs), error },
            stats,
            held,
            log,
          );
        } else if (row.attempts >= retryCfg.maxAttempts) {
          log.error(
            { attempts: row.attempts, targets: summarize(results) },
            `notification undeliverable after ${row.attempts} attempts; marked failed`,
          );
          await settle(row, { kind: 'failed', error }, stats, held, log);
        } else {
          const delayMs = Math.max(fullJitterDelayMs(row.attempts, retryCfg, random), retryAfterMs);
          await settle(row, { kind: 'retry', delayMs, error }, stats, held, log);
        }
      } else if (deferMs !== undefined) {
        await settle(row, { kind: 'release', delayMs: deferMs }, stats, held, log);
      } else {
        // Only today's targets count: a target the routes no longer name is not waited for.
        const failed = targets.filter((t) => results[t.key]?.status === 'failed');
        if (failed.length === 0) await settle(row, { kind: 'sent' }, stats, held, log);
        else {
          const error = failed
            .map((t) => `${t.key}: ${results[t.key]?.error ?? 'failed'}`)
            .join('; ')
            .slice(0, MAX_DELIVERY_ERROR);
          log.error(
            { targets: summarize(results) },
            'notification could not be delivered to every target; marked failed',
          );
          await settle(row, { kind: 'failed', error }, stats, held, log);
        }
      }
    } catch (e) {
      // The store is unreachable: the lease lapses and the row comes back; nothing is lost.
      log.error({ err: describeThrown(e, 500) }, 'outbox write failed; the row is retried after its lease');
    } finally {
      leases.done(row.lease.id);
    }
  }

  async function pass(): Promise<RelayPassResult> {
    const stats = empty();
    if (closing !== undefined) return stats;
    let claimed: readonly ClaimedNotification[];
    // The leases start no earlier than the claim request: counting from here is the safe side.
    // Monotonic time: a wall-clock jump must not stretch or cut the lease.
    const claimedAt = performance.now();
    try {
      const result = await store.claim({
        owner: id,
        limit: relayCfg.batchSize,
        leaseMs: relayCfg.leaseMs,
        dedupWindowMs: dedupCfg.windowMs,
        maxExamples: dedupCfg.maxExamples,
        maxAttempts: retryCfg.maxAttempts,
      });
      claimed = result.claimed;
      stats.claimed = claimed.length;
      stats.digested = result.digested;
      stats.exhausted = result.exhausted ?? 0;
      if (stats.exhausted > 0)
        logger.error(
          { rows: stats.exhausted, maxAttempts: retryCfg.maxAttempts },
          'outbox rows used up their delivery attempts without settling; marked failed',
        );
    } catch (e) {
      logger.error({ err: describeThrown(e, 500) }, 'outbox claim failed; trying again next poll');
      stats.claimFailed = true;
      report(stats);
      return stats;
    }
    const leases = keepLeases(
      claimed.map((r) => r.lease),
      { store, leaseMs: relayCfg.leaseMs, claimedAt, stop: stop.signal, logger },
    );
    try {
      await pLimit(relayCfg.concurrency).map(claimed, (row) => deliverRow(row, leases, stats));
    } finally {
      leases.close();
    }
    if (stats.claimed > 0 || stats.digested > 0) logger.debug(stats, 'outbox pass');
    report(stats);
    return stats;
  }

  function report(stats: RelayPassResult): void {
    try {
      options.onPass?.(stats);
    } catch (e) {
      logger.warn({ err: describeThrown(e, 500) }, 'onPass hook failed');
    }
  }

  function runOnce(): Promise<RelayPassResult> {
    const next = chain.then(pass, pass);
    chain = next;
    return next;
  }

  function schedule(delayMs: number): void {
    if (closing !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      void tick();
    }, delayMs);
  }

  async function tick(): Promise<void> {
    let delay = relayCfg.pollIntervalMs;
    try {
      const r = await runOnce();
      // A full batch (delivered or folded into digests) means more is due: go again at once.
      if (r.claimed + r.digested + r.exhausted >= relayCfg.batchSize) delay = 0;
    } catch (e) {
      logger.error({ err: describeThrown(e, 500) }, 'outbox relay pass failed');
    }
    schedule(delay);
  }

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      stop.abort();
      const finished = chain.then(() => true);
      const timeout = new AbortController();
      const done = await Promise.race([
        finished,
        sleep(relayCfg.shutdownTimeoutMs, timeout.signal).then(() => false),
      ]);
      timeout.abort();
      if (!done)
        logger.warn(
          'outbox relay closed with a pass still running; its rows come back when their leases lapse',
        );
    })());

  return {
    id,
    start() {
      if (started || closing !== undefined) return;
      started = true;
      schedule(0);
    },
    runOnce,
    close,
    [Symbol.asyncDispose]: close,
  };
}

function summarize(results: Readonly<Record<string, ChannelResult>>): Record<string, string> {
  return Object.fromEntries(Object.entries(results).map(([k, r]) => [k, r.status]));
}
