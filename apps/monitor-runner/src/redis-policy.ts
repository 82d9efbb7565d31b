// The monitor's check of Redis' eviction policy: BullMQ's jobs and the heartbeat set must never be
// evicted, so Redis must run with `maxmemory-policy noeviction` (BullMQ's own production guide says
// the same: https://docs.bullmq.io/guide/going-to-production#max-memory-policy).
import { classifyError, eventKindText } from '@ccat/errors';
import type { RedisConnection } from '@ccat/service';
import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import type { Gauge } from 'prom-client';

/** The policy the recovery system needs. */
export const REQUIRED_MAXMEMORY_POLICY = 'noeviction';

export interface RedisPolicyCheckOptions {
  /** A single Redis (or Sentinel's primary): read directly; a Cluster: every primary is read. */
  readonly redis: Pick<RedisConnection, 'config'> | Cluster;
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

/**
 * What one check read: the policy, or `unknown` (CONFIG refused). On a Cluster, the worst primary's
 * (a policy other than noeviction, then `unknown`, then noeviction; ties by address), `node` its
 * `host:port` and `primaries` how many were read.
 */
export type PolicyReading = {
  readonly policy: string;
  readonly ok: boolean;
  readonly node?: string;
  readonly primaries?: number;
};

/** How bad a policy is: lower is worse (an evicting policy, then unknown, then noeviction). */
const rank = (policy: string) => (policy === REQUIRED_MAXMEMORY_POLICY ? 2 : policy === 'unknown' ? 1 : 0);

/** One server's policy; undefined when it is unreachable (a retryable error), `unknown` when refused. */
async function readPolicy(redis: Pick<RedisConnection, 'config'>): Promise<string | undefined> {
  try {
    const reply: unknown = await redis.config('GET', 'maxmemory-policy');
    return Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : 'unknown';
  } catch (e) {
    // Unreachable: not a policy answer (the connection watcher says Redis is down).
    return classifyError(e).retryable ? undefined : 'unknown';
  }
}

/**
 * The reading of `redis`: its own policy, or on a Cluster the worst of every primary's (CONFIG GET
 * answers for the one node that serves the command, so one reply says nothing of the others).
 * Undefined when Redis, or any primary, does not answer: a partial reading could flip between nodes.
 */
async function readReading(redis: RedisPolicyCheckOptions['redis']): Promise<PolicyReading | undefined> {
  // Duck-typed: the Cluster may come from another copy of ioredis than this module's.
  if (!('isCluster' in redis && redis.isCluster)) {
    const policy = await readPolicy(redis);
    return policy === undefined ? undefined : { policy, ok: policy === REQUIRED_MAXMEMORY_POLICY };
  }
  const primaries = redis.nodes('master');
  if (primaries.length === 0) return undefined;
  const read = await Promise.all(
    primaries.map(async (n) => ({
      node: `${n.options.host}:${n.options.port}`,
      policy: await readPolicy(n),
    })),
  );
  if (read.some((r) => r.policy === undefined)) return undefined;
  const [worst] = (read as { node: string; policy: string }[]).sort(
    (a, b) => rank(a.policy) - rank(b.policy) || a.node.localeCompare(b.node),
  );
  return {
    policy: worst!.policy,
    ok: worst!.policy === REQUIRED_MAXMEMORY_POLICY,
    node: worst!.node,
    primaries: read.length,
  };
}

/**
 * Reads `CONFIG GET maxmemory-policy` at `start()` and then every `intervalMs` (on a Cluster from
 * every primary, reporting the worst one and naming it), sets the gauge,
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
    const reading = await readReading(this.#opts.redis);
    if (reading === undefined) return undefined;
    const { policy, node, ok } = reading;
    const { gauge, logger } = this.#opts;
    if (this.#current !== policy) {
      if (this.#current !== undefined) gauge.remove({ policy: this.#current });
      this.#current = policy;
    }
    gauge.set({ policy }, ok ? 1 : 0);
    if (ok) {
      this.#warned = undefined;
      this.#notified = undefined;
      return reading;
    }
    // The worst state, not the node: a cluster whose primaries differ warns once, not per reply.
    if (this.#warned !== policy) {
      this.#warned = policy;
      const where =
        node === undefined ? '' : ` on cluster primary ${node} (worst of ${reading.primaries} primaries)`;
      logger.warn(
        {
          eventKind: 'redis_eviction_policy',
          policy,
          required: REQUIRED_MAXMEMORY_POLICY,
          ...(node !== undefined && { node }),
        },
        policy === 'unknown'
          ? `Redis maxmemory-policy is unknown${where} (CONFIG GET refused): ${eventKindText('redis_eviction_policy')?.advice ?? ''}`
          : `Redis maxmemory-policy is ${policy}${where}, not ${REQUIRED_MAXMEMORY_POLICY}: ${eventKindText('redis_eviction_policy')?.advice ?? ''}`,
      );
    }
    if (this.#notified !== policy && this.#opts.notify !== undefined) {
      try {
        await this.#opts.notify(reading);
        this.#notified = policy;
      } catch (e) {
        logger.warn(
          { err: classifyError(e).message },
          'cannot queue the Redis eviction-policy notification; trying again at the next check',
        );
      }
    }
    return reading;
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
