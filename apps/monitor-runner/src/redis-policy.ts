// The monitor's check of Redis' eviction policy: BullMQ's jobs and the heartbeat set must never be
// evicted, so Redis must run with `maxmemory-policy noeviction` (BullMQ's own production guide says
// the same: https://docs.bullmq.io/guide/going-to-production#max-memory-policy).
import { classifyError, eventKindText } from '@ccat/errors';
import type { RedisConnection } from '@ccat/service';
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';

/** The policy the recovery system needs. */
export const REQUIRED_MAXMEMORY_POLICY = 'noeviction';

export interface RedisPolicyCheckOptions {
  readonly redis: Pick<RedisConnection, 'config'>;
  readonly logger: Logger;
  /** `ccat_redis_maxmemory_policy_ok{policy}`: 1 for noeviction, else 0; one series at a time. */
  readonly gauge: Gauge<'policy'>;
  /** Between checks, in ms (default 60 000): a policy changed at run time is seen within this. */
  readonly intervalMs?: number;
  /**
   * Queues the WARNING notification for a wrong policy (the outbox). Called once per wrong policy;
   * when it throws (PostgreSQL unreachable) it is called again at the next check.
   */
  readonly notify?: (reading: PolicyReading) => Promise<void>;
}

/** What one check read: the policy, or `unknown` (CONFIG refused or Redis unreachable). */
export type PolicyReading = { readonly policy: string; readonly ok: boolean };

/**
 * Reads `CONFIG GET maxmemory-policy` at `start()` and then every `intervalMs`, sets the gauge,
 * and logs ONE WARNING per policy that is not `noeviction` (again only after it changed), or one
 * WARNING that it is `unknown` when CONFIG is disabled or renamed (managed Redis services do that),
 * and queues one WARNING notification for it through `notify`.
 * A Redis that is unreachable leaves the gauge as it was and is not logged here (the connection
 * watcher reports it). Never throws; `close()` stops the timer and is safe to call twice.
 */
export class RedisPolicyCheck {
  readonly #opts: RedisPolicyCheckOptions;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  #warned: string | undefined;
  #notified: string | undefined;
  #current: string | undefined;

  constructor(options: RedisPolicyCheckOptions) {
    this.#opts = options;
  }

  /** Checks once now (awaited), then every interval until `close()`. */
  async start(): Promise<PolicyReading | undefined> {
    const reading = await this.check();
    this.#arm();
    return reading;
  }

  /** One check: reads the policy, sets the gauge, warns once per new bad policy. Never throws. */
  async check(): Promise<PolicyReading | undefined> {
    let policy: string;
    try {
      const reply: unknown = await this.#opts.redis.config('GET', 'maxmemory-policy');
      policy = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : 'unknown';
    } catch (e) {
      const err = classifyError(e);
      // Unreachable: not a policy answer (the connection watcher says Redis is down).
      if (err.retryable) return undefined;
      policy = 'unknown';
    }
    const ok = policy === REQUIRED_MAXMEMORY_POLICY;
    const { gauge, logger } = this.#opts;
    if (this.#current !== policy) {
      if (this.#current !== undefined) gauge.remove({ policy: this.#current });
      this.#current = policy;
    }
    gauge.set({ policy }, ok ? 1 : 0);
    if (ok) {
      this.#warned = undefined;
      this.#notified = undefined;
      return { policy, ok };
    }
    if (this.#warned !== policy) {
      this.#warned = policy;
      logger.warn(
        { eventKind: 'redis_eviction_policy', policy, required: REQUIRED_MAXMEMORY_POLICY },
        policy === 'unknown'
          ? `Redis maxmemory-policy is unknown (CONFIG GET refused): ${eventKindText('redis_eviction_policy')?.advice ?? ''}`
          : `Redis maxmemory-policy is ${policy}, not ${REQUIRED_MAXMEMORY_POLICY}: ${eventKindText('redis_eviction_policy')?.advice ?? ''}`,
      );
    }
    if (this.#notified !== policy && this.#opts.notify !== undefined) {
      try {
        await this.#opts.notify({ policy, ok });
        this.#notified = policy;
      } catch (e) {
        logger.warn(
          { err: classifyError(e).message },
          'cannot queue the Redis eviction-policy notification; trying again at the next check',
        );
      }
    }
    return { policy, ok };
  }

  /** Stops the periodic check. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #arm(): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      void this.check().finally(() => this.#arm());
    }, this.#opts.intervalMs ?? 60_000);
    this.#timer.unref();
  }
}
