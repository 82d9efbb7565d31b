// Over 300 lines: an exclusive name's wait at start, its refresh and its stop share one record's state.
// A service's liveness key: `${namespace}health:${serviceType}:${serviceName}` with a TTL, refreshed
// on a timer, plus a registry entry that outlives it so a dead service is still listed.
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { classifyError, type CCATDataOperationError } from '@ccat/errors';
import type { Logger } from 'pino';
import { z } from 'zod';
import { HeartbeatClosedError, ServiceNameInUseError } from './errors.js';
import {
  attachToBeats,
  healthBeatArgs,
  healthReplied,
  type BeatHealthTarget,
} from './internal/health-link.js';
import type { BeatHealthReply } from './internal/beat-ops.js';
import { keysFor } from './internal/keys-for.js';
import { parseOptions } from './internal/parse-options.js';
import { runScript, type ScriptArg } from './internal/scripts.js';
import { serviceField, serviceNameSchema, serviceTypeSchema } from './internal/service-id.js';
import { silentLogger } from './internal/silent-logger.js';
import { withTimeout } from './internal/timeout.js';
import { healthOptionsSchema, type HealthOptions } from './options.js';
import type { RedisClient } from './redis-client.js';

export type ServiceHealthReporterOptions = HealthOptions & {
  readonly redis: RedisClient;
  readonly logger?: Logger;
  readonly serviceType: string;
  readonly serviceName: string;
  readonly host?: string;
  readonly pid?: number;
  /** Small facts shown by readers (version). */
  readonly info?: Readonly<Record<string, string | number | boolean>>;
  /**
   * The queues this service takes work from (a worker's, DESIGN §11 names), published in its health
   * record so readers can tell which waiting work no live service serves. Absent: the record says
   * nothing about queues (what services before this field wrote). At most 10 000 names of ≤ 255 chars.
   */
  readonly queues?: readonly string[];
  /** Delete the key at close so readers see the service stopped at once (default true). */
  readonly deleteOnClose?: boolean;
  /** Called for every failed refresh, with the classified error. */
  readonly onError?: (error: CCATDataOperationError) => void;
  /**
   * One live process per name (a worker's `workerId`, whose rows' `claimed_by` must name one process).
   * The record carries this reporter's random `incarnation`, and it never writes over a live record of
   * another: `start()` waits for such a record to expire (a predecessor that died: at most its TTL)
   * and rejects with ServiceNameInUseError if it is refreshed meanwhile (another live process). A
   * refresh that finds the record taken over stops refreshing and calls `onTaken`; another process's
   * record older than this one's last write is a copy Redis came back with (a restored snapshot), and
   * is written over with a warning. Default false.
   */
  readonly exclusive?: boolean;
  /** Exclusive: called once when another process took the name over (refreshing stops). */
  readonly onTaken?: (error: ServiceNameInUseError) => void;
};

const queuesSchema = z.array(z.string().min(1).max(255)).max(10_000);
const infoSchema = z.record(z.string().max(64), z.union([z.string().max(500), z.number(), z.boolean()]));

const identitySchema = z.strictObject({
  serviceType: serviceTypeSchema,
  serviceName: serviceNameSchema,
  host: z.string().max(255).optional(),
  pid: z.number().int().nonnegative().optional(),
  info: infoSchema.optional(),
  queues: queuesSchema.optional(),
  deleteOnClose: z.boolean().default(true),
});

/**
 * Keeps one service's health key alive: `start()` writes it and refreshes it every `refreshMs`, or,
 * once given to a HeartbeatEmitter as its `health`, inside each of that emitter's beats instead.
 */
export class ServiceHealthReporter implements AsyncDisposable, BeatHealthTarget {
  /** The health key this reporter refreshes. */
  readonly key: string;
  readonly #redis: RedisClient;
  readonly #log: Logger;
  readonly #opts: z.output<typeof healthOptionsSchema>;
  readonly #services: string;
  readonly #field: string;
  readonly #identity: {
    serviceType: string;
    serviceName: string;
    host: string;
    pid: number | undefined;
    info: Readonly<Record<string, string | number | boolean>> | undefined;
    queues: readonly string[] | undefined;
    incarnation?: string;
  };
  #info: string;
  readonly #deleteOnClose: boolean;
  readonly #onError: ((error: CCATDataOperationError) => void) | undefined;
  readonly #onTaken: ((error: ServiceNameInUseError) => void) | undefined;
  /** False once a HeartbeatEmitter refreshes the record in its beats. */
  #selfRefresh = true;
  /** While start() waits on another process's record: no write before this Redis time (its expiry). */
  #notBefore: number | undefined;
  /**
   * Redis time (ms) of this process's last write of the record (a lower bound): another process's
   * record older than that, while Redis's clock is not behind it, is a copy Redis came back with,
   * written over (health-write.lua).
   */
  #ownLastSeen: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #starting: Promise<void> | undefined;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  #inflight: Promise<unknown> = Promise.resolve();

  constructor(options: ServiceHealthReporterOptions) {
    const {
      redis,
      logger,
      onError,
      serviceType,
      serviceName,
      host,
      pid,
      info,
      queues,
      deleteOnClose,
      exclusive,
      onTaken,
      ...config
    } = options;
    this.#opts = parseOptions(healthOptionsSchema, config, 'health');
    const id = parseOptions(
      identitySchema,
      { serviceType, serviceName, host, pid, info, queues, deleteOnClose },
      'health',
    );
    this.#redis = redis;
    this.#onError = onError;
    this.#onTaken = onTaken;
    this.#deleteOnClose = id.deleteOnClose;
    const keys = keysFor(this.#opts.keyPrefix, this.#opts.hashTag);
    this.key = keys.health(id.serviceType, id.serviceName);
    this.#services = keys.services;
    this.#field = serviceField(id.serviceType, id.serviceName);
    this.#identity = {
      serviceType: id.serviceType,
      serviceName: id.serviceName,
      host: id.host ?? hostname(),
      pid: id.pid,
      info: id.info,
      queues: id.queues,
      ...(exclusive === true && { incarnation: randomBytes(8).toString('hex') }),
    };
    this.#info = JSON.stringify(this.#identity);
    this.#log = (logger ?? silentLogger()).child({
      component: 'service-health',
      serviceType: id.serviceType,
      serviceName: id.serviceName,
    });
  }

  /** Writes the key now, then refreshes it on a timer. Rejects (classified) if the first write fails. */
  start(): Promise<void> {
    return (this.#starting ??= this.#start().catch((e: unknown) => {
      this.#starting = undefined;
      throw classifyError(e);
    }));
  }

  /**
   * Replaces the queues published in the record (see `queues` of the options); the next refresh
   * carries them (call before `start()` to publish them with the first write). Throws
   * ConfigurationError for more than 10 000 names or a name that is empty or over 255 chars.
   */
  setQueues(queues: readonly string[]): void {
    this.#identity.queues = parseOptions(queuesSchema, [...queues], 'health');
    this.#info = JSON.stringify(this.#identity);
  }

  /**
   * Replaces the small facts published in the record (`info` of the options); the next refresh
   * carries them (call before `start()` to publish them with the first write). Throws
   * ConfigurationError for a key over 64 chars or a string value over 500.
   */
  setInfo(info: Readonly<Record<string, string | number | boolean>>): void {
    this.#identity.info = parseOptions(infoSchema, { ...info }, 'health');
    this.#info = JSON.stringify(this.#identity);
  }

  /** One refresh now. Rejects with the classified error. */
  beat(): Promise<void> {
    const run = this.#inflight.then(() => this.#write()).then(() => undefined);
    this.#inflight = run.catch(() => undefined);
    return run;
  }

  /** One refresh by the timer: a failure is logged and passed to `onError`, a takeover handled. Never rejects. */
  async #refresh(): Promise<void> {
    if (!this.#started || this.#closed) return;
    try {
      await this.beat();
    } catch (e) {
      if (e instanceof ServiceNameInUseError) return this.#takenOver(e);
      const error = classifyError(e);
      this.#log.warn({ err: error }, 'service health refresh failed');
      try {
        this.#onError?.(error);
      } catch (hookError) {
        this.#log.error({ err: classifyError(hookError) }, 'onError hook threw');
      }
    }
  }

  /** Taken over (this process was silent past its TTL and another took the name): not fought for. */
  #takenOver(e: ServiceNameInUseError): void {
    if (this.#closed) return;
    this.#log.error({ err: e.message, ...e.context }, 'health record taken over by another process');
    this.#closed = true;
    clearTimeout(this.#timer);
    try {
      this.#onTaken?.(e);
    } catch (hookError) {
      this.#log.error({ err: classifyError(hookError) }, 'onTaken hook threw');
    }
  }

  /** See BeatHealthTarget: a HeartbeatEmitter refreshes the record from now on; the timer stops. */
  [attachToBeats](): readonly [string, string] {
    this.#selfRefresh = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    return [this.key, this.#services];
  }

  [healthBeatArgs](): readonly ScriptArg[] | undefined {
    if (!this.#started || this.#closed) return undefined;
    return [
      this.#field,
      this.#opts.ttlMs,
      this.#info,
      this.#identity.incarnation ?? '',
      this.#ownLastSeen === undefined ? '' : String(this.#ownLastSeen),
    ];
  }

  [healthReplied](health: BeatHealthReply, now: number): void {
    if (health === 'unchained') return;
    if (typeof health === 'object' && 'takenBy' in health) {
      this.#takenOver(
        ServiceNameInUseError.heldBy(this.#identity.serviceType, this.#identity.serviceName, health.takenBy),
      );
      return;
    }
    if (typeof health === 'object') this.#replacedCopy(health.replaced);
    this.#wrote(now);
  }

  #wrote(now: number): void {
    // The latest reply's time, not the largest: after Redis's clock steps back, the next write
    // makes copies recognisable again (an earlier reply heard late only makes the rule stricter).
    this.#ownLastSeen = now;
  }

  /** Written over another process's record older than this one's last write (see `#ownLastSeen`). */
  #replacedCopy(record: string): void {
    const { context } = ServiceNameInUseError.heldBy(
      this.#identity.serviceType,
      this.#identity.serviceName,
      record,
    );
    this.#log.warn(
      { ...context, ownLastSeen: this.#ownLastSeen },
      "the health record of this name was an older copy of another process's (Redis came back with older data: a restored snapshot or a promoted replica); written over it",
    );
  }

  /** Stops refreshing and records the stop (deleting the key unless deleteOnClose is false). Never rejects. */
  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown());
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #start(): Promise<void> {
    if (this.#closed) throw new HeartbeatClosedError('service health reporter is closed');
    let held: { lastSeen: unknown; until: number } | undefined;
    for (;;) {
      try {
        // Not written before the holder's record would have expired, even when it vanished sooner
        // (Redis lost it: the holder may be alive and writes it again within its beat).
        if (await this.#write()) break;
      } catch (e) {
        if (!(e instanceof ServiceNameInUseError)) throw e;
        const { lastSeen, ttlMs } = e.context as { lastSeen?: unknown; ttlMs?: unknown };
        // Refreshed while this process waited, or a record that does not expire: a live holder.
        if (held !== undefined && (lastSeen !== held.lastSeen || performance.now() > held.until)) throw e;
        if (held === undefined) {
          // At most ten of this reporter's TTLs: a foreign record (a huge ttlMs, a lastSeen ahead of
          // Redis's clock) does not hold a start for ever.
          const cap = 10 * this.#opts.ttlMs;
          const ttl = Math.min(typeof ttlMs === 'number' ? ttlMs : this.#opts.ttlMs, cap);
          held = { lastSeen, until: performance.now() + ttl + 1000 };
          if (typeof lastSeen === 'number') this.#notBefore = lastSeen + ttl;
          this.#log.warn(
            e.context,
            'the health record of this name is held by another process: waiting for it to expire (a predecessor that died) or be refreshed (a live process with the same name: refused)',
          );
        }
      }
      if (held !== undefined && performance.now() > held.until) this.#notBefore = undefined;
      await sleep(Math.min(250, this.#opts.refreshMs));
      if (this.#closed) return;
    }
    this.#notBefore = undefined;
    if (this.#closed) return;
    this.#started = true;
    this.#schedule();
  }

  /** One write; false when the script held it back (start() waiting: before `#notBefore`). */
  async #write(): Promise<boolean> {
    const reply = await withTimeout(
      runScript(
        this.#redis,
        'healthBeat',
        [this.key, this.#services],
        [
          this.#field,
          this.#opts.ttlMs,
          this.#info,
          this.#identity.incarnation ?? '',
          this.#notBefore === undefined ? '' : String(this.#notBefore),
          this.#ownLastSeen === undefined ? '' : String(this.#ownLastSeen),
        ],
      ),
      this.#opts.commandTimeoutMs,
      'service health refresh',
    );
    if (typeof reply === 'number') {
      this.#wrote(reply);
      return true;
    }
    if (Array.isArray(reply) && reply[0] === 'replaced' && typeof reply[2] === 'number') {
      this.#replacedCopy(String(reply[1]));
      this.#wrote(reply[2]);
      return true;
    }
    if (Array.isArray(reply) && reply[0] === 'taken')
      throw ServiceNameInUseError.heldBy(this.#identity.serviceType, this.#identity.serviceName, reply[1]);
    if (Array.isArray(reply) && reply[0] === 'wait') return false;
    throw new TypeError('unexpected reply from the health refresh script');
  }

  #schedule(): void {
    if (this.#closed || !this.#selfRefresh) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#refresh().finally(() => this.#schedule());
    }, this.#opts.refreshMs);
    this.#timer.unref();
  }

  async #shutdown(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await Promise.allSettled([this.#inflight, this.#starting]);
    if (!this.#started) return;
    try {
      await withTimeout(
        runScript(
          this.#redis,
          'healthStop',
          [this.key, this.#services],
          [
            this.#field,
            this.#opts.ttlMs,
            this.#info,
            this.#deleteOnClose ? '1' : '0',
            this.#identity.incarnation ?? '',
          ],
        ),
        this.#opts.commandTimeoutMs,
        'service health stop',
      );
    } catch (e) {
      this.#log.warn(
        { err: classifyError(e) },
        'could not record the stop; the health key expires by its TTL',
      );
    }
  }
}
