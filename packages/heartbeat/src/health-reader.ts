// Lists services alive, dead (key expired: it stopped refreshing) or stopped (closed gracefully),
// from the registry that outlives the health keys.
import { classifyError, truncate } from '@ccat/errors';
import type { Logger } from 'pino';
import { z } from 'zod';
import { str } from './internal/decode.js';
import { keysFor } from './internal/keys-for.js';
import { parseOptions } from './internal/parse-options.js';
import { runScript } from './internal/scripts.js';
import { serviceField, serviceNameSchema, serviceTypeSchema } from './internal/service-id.js';
import { silentLogger } from './internal/silent-logger.js';
import type { HeartbeatKeys } from './keys.js';
import { keyspaceOptionsSchema, type KeyspaceOptions } from './options.js';
import type { RedisClient } from './redis-client.js';

export type ServiceHealthReaderOptions = KeyspaceOptions & {
  readonly redis: RedisClient;
  readonly logger?: Logger;
};

export type ServiceStatus = 'alive' | 'dead' | 'stopped';

export interface ServiceHealth {
  readonly serviceType: string;
  readonly serviceName: string;
  readonly status: ServiceStatus;
  readonly alive: boolean;
  /** Last refresh, Redis time (ms since the epoch). */
  readonly lastSeenAt: number;
  readonly lastSeenAgoMs: number;
  /** Remaining TTL of the health key while alive. */
  readonly expiresInMs: number | undefined;
  readonly stoppedAt: number | undefined;
  readonly ttlMs: number | undefined;
  readonly host: string | undefined;
  readonly pid: number | undefined;
  readonly info: Readonly<Record<string, string | number | boolean>> | undefined;
  /**
   * The queues the service said it takes work from; undefined when its record does not say (written
   * before services published queues, or a service that takes none).
   */
  readonly queues: readonly string[] | undefined;
}

export interface ServiceHealthListing {
  readonly serverTime: number;
  readonly services: readonly ServiceHealth[];
  /** Registry entries that cannot be read; logged, left in place (remove them with `forget`). */
  readonly corrupt: readonly { readonly field: string; readonly raw: string }[];
}

const recordSchema = z.object({
  serviceType: serviceTypeSchema,
  serviceName: serviceNameSchema,
  lastSeen: z.number(),
  ttlMs: z.number().optional(),
  stoppedAt: z.number().optional(),
  host: z.string().optional(),
  pid: z.number().optional(),
  info: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  queues: z.array(z.string()).optional(),
});
type HealthRecord = z.output<typeof recordSchema>;

function parseRecord(raw: string | undefined): HealthRecord | undefined {
  if (raw === undefined) return undefined;
  try {
    const r = recordSchema.safeParse(JSON.parse(raw));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

/** Reads the service registry and health keys of one keyspace. No timers: no start/close. */
export class ServiceHealthReader {
  readonly #redis: RedisClient;
  readonly #log: Logger;
  readonly #keys: HeartbeatKeys;

  constructor(options: ServiceHealthReaderOptions) {
    const { redis, logger, ...config } = options;
    const o = parseOptions(keyspaceOptionsSchema, config, 'health');
    this.#redis = redis;
    this.#keys = keysFor(o.keyPrefix, o.hashTag);
    this.#log = (logger ?? silentLogger()).child({ component: 'service-health-reader' });
  }

  /** Every service ever registered (until forgotten), alive or not, by type and name. Two round trips. */
  async list(): Promise<ServiceHealthListing> {
    try {
      const registry = await this.#redis.hgetall(this.#keys.services);
      const known: HealthRecord[] = [];
      const corrupt: { field: string; raw: string }[] = [];
      for (const [field, raw] of Object.entries(registry)) {
        const rec = parseRecord(raw);
        if (rec === undefined || serviceField(rec.serviceType, rec.serviceName) !== field) {
          corrupt.push({ field, raw: truncate(raw, 500) });
          this.#log.warn({ field }, 'corrupt service registry entry');
        } else {
          known.push(rec);
        }
      }
      known.sort((a, b) =>
        serviceField(a.serviceType, a.serviceName).localeCompare(serviceField(b.serviceType, b.serviceName)),
      );
      const keys = known.map((r) => this.#keys.health(r.serviceType, r.serviceName));
      const reply = (await runScript(this.#redis, 'healthRead', keys, [])) as unknown[];
      const serverTime = Number(reply[0]);
      const services = known.map((reg, i): ServiceHealth => {
        const pttl = Number(reply[1 + 2 * i]);
        const live = parseRecord(str(reply[2 + 2 * i]));
        const alive = pttl > 0 || pttl === -1;
        const rec = alive && live !== undefined ? live : reg;
        const status: ServiceStatus = alive ? 'alive' : reg.stoppedAt !== undefined ? 'stopped' : 'dead';
        return {
          serviceType: reg.serviceType,
          serviceName: reg.serviceName,
          status,
          alive,
          lastSeenAt: rec.lastSeen,
          lastSeenAgoMs: serverTime - rec.lastSeen,
          expiresInMs: pttl > 0 ? pttl : undefined,
          stoppedAt: alive ? undefined : reg.stoppedAt,
          ttlMs: rec.ttlMs,
          host: rec.host,
          pid: rec.pid,
          info: rec.info,
          queues: rec.queues,
        };
      });
      return { serverTime, services, corrupt };
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Removes a service from the registry (and its key); true when it was known. */
  async forget(serviceType: string, serviceName: string): Promise<boolean> {
    try {
      const removed = await this.#redis.hdel(this.#keys.services, serviceField(serviceType, serviceName));
      await this.#redis.unlink(this.#keys.health(serviceType, serviceName));
      return removed > 0;
    } catch (e) {
      throw classifyError(e);
    }
  }

  /** Forgets a corrupt registry entry by its raw field. */
  async forgetField(field: string): Promise<boolean> {
    try {
      return (await this.#redis.hdel(this.#keys.services, field)) > 0;
    } catch (e) {
      throw classifyError(e);
    }
  }
}
