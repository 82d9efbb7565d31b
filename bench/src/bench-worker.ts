// What the worker benchmarks (worker-overhead, worker-overhead-types) share: "ours" as the worker app
// builds it (heartbeat emitter, TaskRunner, a Dispatcher that dispatches everything due at once), and
// completions counted where they happen.
import type { Database, OperationType } from '@ccat/db';
import { HeartbeatEmitter, type RedisClient } from '@ccat/heartbeat';
import { createHandlerRegistry, recoveryPolicySchema } from '@ccat/recovery-handlers';
import {
  createFaultInjector,
  createLocalCopyTransport,
  createWorkerMetrics,
  Dispatcher,
  TaskRunner,
  workerConfigSchema,
  type Operation,
} from '@ccat/worker';
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';

/** Completions counted where they happen (no polling load on the machine under test). */
export class Completions {
  #count = 0;
  #waiter: { target: number; resolve: () => void } | undefined;
  /** Completions so far. */
  get count(): number {
    return this.#count;
  }
  /** One more completion. */
  done(): void {
    this.#count++;
    if (this.#waiter !== undefined && this.#count >= this.#waiter.target) this.#waiter.resolve();
  }
  /** Resolves once `target` completions were counted (one waiter at a time). */
  until(target: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#count >= target) resolve();
      else this.#waiter = { target, resolve };
    });
  }
}

/** A heartbeat emitter as the worker app runs it (removals, and by default registrations, ride on the next beat). */
export function benchEmitter(
  redis: RedisClient,
  keyPrefix: string,
  logger: Logger,
  registerOnNextBeat = true,
): HeartbeatEmitter {
  return new HeartbeatEmitter({
    redis,
    keyPrefix,
    intervalMs: 1000,
    timeoutMs: 60_000,
    workerId: 'bench',
    logger,
    removeOnNextBeat: true,
    registerOnNextBeat,
  });
}

/** A TaskRunner as the worker app builds it (no faults, local transport), with the given operations. */
export function benchRunner(deps: {
  readonly db: Kysely<Database>;
  readonly heartbeat: HeartbeatEmitter;
  readonly logger: Logger;
  readonly keyPrefix: string;
  /** The group commit (transitions.maxBatch / maxInFlight); absent keys: the worker's defaults. */
  readonly transitions: { readonly maxBatch?: number; readonly maxInFlight?: number };
  readonly operations: Record<OperationType, Operation>;
}): TaskRunner {
  const { db, logger } = deps;
  return new TaskRunner({
    db,
    heartbeat: deps.heartbeat,
    recovery: { db, registry: createHandlerRegistry(), policy: recoveryPolicySchema.parse({}), logger },
    logger,
    workerId: 'bench',
    transport: createLocalCopyTransport(),
    faults: createFaultInjector({ enabled: false, seed: '', rules: [] }, logger, () => undefined),
    metrics: createWorkerMetrics(),
    config: workerConfigSchema.parse({
      keyPrefix: deps.keyPrefix,
      heartbeat: { intervalMs: 1000, livenessTimeoutMs: 60_000, progressTimeoutMs: 60_000 },
      transitions: deps.transitions,
    }),
    operations: deps.operations,
  });
}

/** A Dispatcher for `operationTypes` whose `runOnce` dispatches every due row (no bundling, no re-checks). */
export function benchDispatcher(
  deps: {
    readonly db: Kysely<Database>;
    readonly connection: Redis;
    readonly bullPrefix: string;
    readonly logger: Logger;
  },
  operationTypes: readonly OperationType[],
): Dispatcher {
  return new Dispatcher(deps, {
    intervalMs: 60_000,
    batchSize: 10_000,
    scheduleTimeoutMs: 3_600_000,
    bundleSize: 1_000_000,
    bundleMaxWaitMs: 86_400_000,
    operationTypes: [...operationTypes],
  });
}
