// Over 300 lines: one composition, its start order and its close order side by side so they stay each other's reverse.
// createWorker: composes the packages into one worker process (BullMQ workers on the served queues,
// the task runner, heartbeats, service health, the dispatcher, /metrics). Owns no process state:
// main.ts passes the connections and the logger and owns the signals.
import { assertSearchPath, databaseNow, migrationStatus, type Database } from '@ccat/db';
import { HeartbeatEmitter, ServiceHealthReporter } from '@ccat/heartbeat';
import { createHandlerRegistry, type HandlerRegistry } from '@ccat/recovery-handlers';
import {
  bullErrorListener,
  ConnectionFaultLog,
  shutdownSteps,
  startServing,
  type HttpServer,
} from '@ccat/service';
import { Worker as BullWorker } from 'bullmq';
import type { RedisConnection } from '@ccat/service';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { WorkerConfig } from './config.js';
import { Dispatcher } from './dispatcher.js';
import { createFaultInjector } from './faults.js';
import { createWorkerMetrics, type WorkerMetrics } from './metrics.js';
import { bullPrefix as queuePrefix, servedQueues } from './queues.js';
import { TaskRunner } from './task-runner.js';
import { createCommandTransport, createLocalCopyTransport, type Transport } from './transports.js';

export interface WorkerDeps {
  readonly config: WorkerConfig;
  readonly workerId: string;
  readonly db: Kysely<Database>;
  /** For heartbeats and the health key. */
  readonly redis: RedisConnection;
  /** For BullMQ (created with maxRetriesPerRequest: null). */
  readonly bullConnection: RedisConnection;
  readonly logger: Logger;
  /** The schema the tables live in (readiness compares its migrations with this code's). Default `config.database.schema`. */
  readonly schema?: string;
  /**
   * How the process ends itself (main passes process.kill of its own pid): SIGKILL for the crash
   * fault, SIGTERM (a graceful stop) when another process took over its worker id.
   */
  readonly exit: (signal: 'SIGKILL' | 'SIGTERM') => void;
  /** This process's pid, shown in heartbeat details and the health key. */
  readonly pid?: number;
  readonly registry?: HandlerRegistry;
}

export interface WorkerApp extends AsyncDisposable {
  readonly metrics: WorkerMetrics;
  readonly runner: TaskRunner;
  readonly dispatcher: Dispatcher | undefined;
  /** The /metrics port, once started (undefined when off). */
  readonly httpPort: number | undefined;
  readonly queues: readonly string[];
  /**
   * Starts, in this order: the HTTP server (a port in use throws `ConfigurationError` before any
   * work), then waits for the database (reachable and migrated; logged once, /readyz says why not
   * ready) and for Redis (every connection answering; logged once), then heartbeats, the health key, the queue workers and the dispatcher. Resolves once
   * the work runs, or once `close()` was called while it waited (no work started). Throws
   * `ConfigurationError` when PostgreSQL refuses the configuration.
   */
  start(): Promise<void>;
  /** Graceful: stop fetching, give running tasks the grace period, then abort and release them. */
  close(): Promise<void>;
  /** Second signal: abort and release everything now. */
  forceClose(): Promise<void>;
}

/** Longest wait of one BullMQ step of the shutdown (pause, close) for a Redis that does not answer, in ms. */
const QUEUE_STEP_LIMIT_MS = 5_000;

/** Resolves like `p`, or rejects after `ms` with an error saying what did not finish (`p` is left to settle). */
async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  void p.catch(() => undefined);
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The command transport of `transport.command`; a program that cannot be started at run time is
 * logged (ERROR once per outage, INFO when it starts again) and its copies are retried. Throws
 * `ConfigurationError` (exit 2 at start) when the program is not there now.
 */
function commandTransport(
  options: Extract<WorkerConfig['transport'], { kind: 'command' }>,
  log: Logger,
): Transport {
  const program = options.command[0];
  return createCommandTransport({
    ...options,
    onUnavailable: (problem) =>
      problem === undefined
        ? log.info({ program }, 'transport.command starts again')
        : log.error(
            { err: problem.message, errorCode: problem.code, program },
            'transport.command cannot be started: install the program or fix transport.command; data transfers are retried meanwhile',
          ),
  });
}

/**
 * One worker process's work, composed from the packages. It owns what it creates: the heartbeat
 * emitter, the service health reporter, the task runner, the dispatcher (when enabled), one BullMQ
 * worker per served queue and the /metrics server. It does not own `deps`' connections (the pool,
 * both Redis clients) or the logger: the caller opens and closes them (main.ts through runService).
 *
 * Lifecycle: `start()` once (HTTP server, then it waits for the database and Redis, then heartbeats,
 * the health key, the queue workers and the dispatcher); `close()` is graceful and memoized (no new
 * jobs, running tasks get `shutdown.graceMs`, then are aborted and released; every step runs even
 * when one fails); `forceClose()` aborts and releases at once. Guarantees: BullMQ delivers and
 * PostgreSQL decides (no BullMQ retries or stalled re-runs: `maxStalledCount: 0`), every write of a
 * task is fenced by its attempt, and a task that loses its lease is aborted and never completed.
 */
export function createWorker(deps: WorkerDeps): WorkerApp {
  const { config, logger, workerId } = deps;
  const log = logger.child({ workerId });
  const metrics = createWorkerMetrics();
  const bullPrefix = queuePrefix(config.keyPrefix);
  const health = new ServiceHealthReporter({
    redis: deps.redis,
    keyPrefix: config.keyPrefix,
    serviceType: 'worker',
    serviceName: workerId,
    // Dead within the liveness bound (a SIGKILLed worker is no longer `alive` after it), not 90 s.
    ttlMs: Math.max(100, config.heartbeat.livenessTimeoutMs), // the health key's TTL floor
    refreshMs: config.heartbeat.intervalMs,
    // One live process per worker id: rows' claimed_by and the monitors' reading of this record
    // (claimsSince) name one process. A second process with the same id waits for a dead
    // predecessor's record to expire, and is refused (exit 2) while another process refreshes it.
    exclusive: true,
    onTaken: (e) => {
      log.error(
        { err: e.message },
        'another process took over this worker id (this one was silent past its liveness bound): stopping',
      );
      deps.exit('SIGTERM');
    },
    logger: log,
    ...(deps.pid !== undefined && { pid: deps.pid }),
  });
  const heartbeat = new HeartbeatEmitter({
    redis: deps.redis,
    keyPrefix: config.keyPrefix,
    intervalMs: config.heartbeat.intervalMs,
    timeoutMs: config.heartbeat.livenessTimeoutMs,
    progressTimeoutMs: config.heartbeat.progressTimeoutMs,
    // A finished task's removal rides on the next beat: one round trip less per task.
    removeOnNextBeat: true,
    registerOnNextBeat: config.heartbeat.registerOnNextBeat,
    workerId,
    ...(deps.pid !== undefined && { pid: deps.pid }),
    logger: log,
    // A beat that sent nothing (before the health record started) made no round trip: not a sample.
    onBeat: (r) => {
      if (r.serverTime !== undefined) metrics.heartbeatRtt.observe(r.rttMs / 1000);
    },
    // The health record is refreshed inside each beat's own script, after its registrations: it
    // never vouches for a task whose registration has not run (two timers drift apart; a separate
    // command can run first after a NOSCRIPT resend), and it lives as long as the beats do, also
    // when they time out here but still run in Redis (a link slower than the command timeout).
    // Issue 13 adversaries.
    health,
    onError: () => metrics.heartbeatFailures.inc(),
  });
  const registry = deps.registry ?? createHandlerRegistry();
  // Redis connection errors of the queue workers and the dispatcher's queues: once per outage.
  const redisFaults = new ConnectionFaultLog(log, 'Redis');
  const runner = new TaskRunner({
    db: deps.db,
    heartbeat,
    recovery: { db: deps.db, registry, policy: config.recovery, logger: log },
    logger: log,
    workerId,
    transport:
      config.transport.kind === 'local'
        ? createLocalCopyTransport()
        : commandTransport(config.transport, log),
    faults: createFaultInjector(config.faults, log, deps.exit),
    metrics,
    config,
    // While a task waits to run alone (or runs), the shared queues fetch nothing (issue 13.4).
    onAlone: (alone) => {
      for (const w of sharedWorkers) {
        if (alone) void w.pause(true).catch(() => undefined);
        else if (closing === undefined) void Promise.resolve(w.resume()).catch(() => undefined);
      }
    },
  });
  const dispatcher = config.dispatcher.enabled
    ? new Dispatcher(
        {
          db: deps.db,
          connection: deps.bullConnection,
          bullPrefix,
          logger: log.child({ component: 'dispatcher' }),
          metrics,
          redisFaults,
        },
        { ...config.dispatcher, operationTypes: config.operationTypes },
      )
    : undefined;
  const bullWorkers: BullWorker[] = [];
  /** The workers of the shared (not isolation) queues. */
  const sharedWorkers: BullWorker[] = [];
  const queues: string[] = [];
  let http: HttpServer | undefined;
  let closing: Promise<void> | undefined;
  let working = false;
  const schema = deps.schema ?? config.database.schema;
  // close() during start (while waiting for the database) ends the wait: no work starts.
  const stopping = new AbortController();
  /** How long each BullMQ step of the shutdown may wait for Redis. */
  const queueStepMs = Math.min(QUEUE_STEP_LIMIT_MS, config.shutdown.closeTimeoutMs);

  const app: WorkerApp = {
    metrics,
    runner,
    dispatcher,
    get httpPort() {
      return http?.port;
    },
    queues,
    async start() {
      const ready = await startServing({
        http: config.http,
        registry: metrics.registry,
        healthDetails: () => ({ workerId, inFlight: runner.inFlight, queues: queues.length }),
        migrations: () => migrationStatus(deps.db, { schema }),
        redis: { redis: deps.redis, bull: deps.bullConnection },
        working: () => working && closing === undefined,
        schema,
        searchPath: () => assertSearchPath(deps.db, schema),
        logger: log,
        signal: stopping.signal,
        listening: (server) => void (http = server),
      });
      if (!ready) return;
      await heartbeat.start();
      const served = (
        await servedQueues(deps.db, config.serve, (skipped) =>
          log.warn(
            { site: skipped.site, location: skipped.location, reason: skipped.reason },
            `data location ${skipped.site}/${skipped.location} skipped: its queues cannot be served (${skipped.reason}); fix its row in data_locations or sites`,
          ),
        )
      ).filter((q) => config.operationTypes.includes(q.type));
      // Published with the first write: readers tell from it which waiting work no live worker serves.
      health.setQueues(served.map((q) => q.name));
      // Read by the monitors: rows of this worker whose heartbeat member is missing wait out this
      // worker's own liveness bound while it is alive (it registers tasks with its next beat), but
      // only rows claimed since `claimsSince` (the database's clock before this process's first
      // claim): a process restarted under the same worker id (a container in its pod) does not
      // vouch for its predecessor's rows (issue 13, R2).
      health.setInfo({
        heartbeatIntervalMs: config.heartbeat.intervalMs,
        livenessTimeoutMs: config.heartbeat.livenessTimeoutMs,
        claimsSince: await databaseNow(deps.db),
      });
      await health.start();
      if (stopping.signal.aborted) return;
      for (const q of served) {
        const w = new BullWorker(q.name, (job) => runner.run(job.data, job.id, q.name, q.alone), {
          connection: deps.bullConnection,
          prefix: bullPrefix,
          // An isolation queue's job runs with nothing else in the process (issue 13.4): one at a time.
          concurrency: q.alone ? 1 : config.concurrency,
          // BullMQ delivers, PostgreSQL decides (DESIGN §4): no BullMQ retries, no stalled re-runs.
          maxStalledCount: 0,
          removeOnComplete: { count: 0 },
          removeOnFail: { count: 1000 },
          name: workerId,
        });
        // The worker's own connections (a blocking duplicate of bullConnection) report here: a lost
        // Redis is logged once per outage and BullMQ reconnects.
        w.on('error', bullErrorListener(redisFaults, log, { queue: q.name }));
        bullWorkers.push(w);
        if (!q.alone) sharedWorkers.push(w);
        queues.push(q.name);
      }
      dispatcher?.start();
      working = true;
      log.info(
        {
          queues: queues.length,
          concurrency: config.concurrency,
          dispatcher: dispatcher !== undefined,
          httpPort: http?.port,
        },
        'worker started',
      );
    },
    close() {
      stopping.abort();
      return (closing ??= (async () => {
        log.info(
          { graceMs: config.shutdown.graceMs, inFlight: runner.inFlight },
          'shutting down: no new jobs',
        );
        await shutdownSteps(log, [
          // BullMQ's pause and close talk to Redis and wait for it without bound: a hung Redis
          // would hold the shutdown until main's limit (exit 1). Bounded; the connections are
          // dropped after these steps anyway, and PostgreSQL, not BullMQ, owns the rows.
          [
            'pause workers',
            () => bounded(Promise.all(bullWorkers.map((w) => w.pause(true))), queueStepMs, 'pause workers'),
          ],
          ['dispatcher', async () => dispatcher?.close()],
          [
            'running tasks',
            async () => {
              if (!(await runner.drain(config.shutdown.graceMs))) {
                log.warn(
                  { inFlight: runner.inFlight },
                  'grace period over: aborting and releasing running tasks',
                );
                await runner.abortAll('worker shutting down', config.shutdown.closeTimeoutMs);
              }
            },
          ],
          [
            'queue workers',
            () => bounded(Promise.all(bullWorkers.map((w) => w.close())), queueStepMs, 'close queue workers'),
          ],
          ['heartbeat', () => heartbeat.close()],
          ['health key', () => health.close()],
          ['http', async () => http?.close()],
        ]).finally(() => log.info('worker stopped'));
      })());
    },
    async forceClose() {
      log.warn({ inFlight: runner.inFlight }, 'forced shutdown: aborting and releasing running tasks now');
      await runner.abortAll('worker forced to stop', Math.min(5_000, config.shutdown.closeTimeoutMs));
    },
    [Symbol.asyncDispose]() {
      return app.close();
    },
  };
  return app;
}
