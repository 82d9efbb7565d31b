// The demo's worker and monitor configuration: the production schema, with seconds instead of
// hours, and a fault mix that exercises every recovery path. Plain JSON documents: the demo imports
// no app; each process validates its file at start and exits 2 on a mistake, which fails the run.

/** A configuration file's content, as the apps' `--config` reads it. */
export type ConfigDocument = Record<string, unknown>;

export interface DemoConnections {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly keyPrefix: string;
  readonly smtpPort: number;
  readonly slackChannel?: string;
}

const HEARTBEAT_TIMEOUT_MS = 4000;

/** Transient and permanent errors, crashes, freezes and hangs, on first attempts (retries get through). */
function faultMix(seed: string): ConfigDocument {
  return {
    enabled: true,
    seed,
    rules: [
      {
        kind: 'non_retryable',
        fraction: 0.06,
        operationTypes: ['raw_data_package'],
        attempts: [0],
        stage: 'start',
      },
      { kind: 'retryable', fraction: 0.15, attempts: [0], stage: 'middle' },
      { kind: 'crash', fraction: 0.04, attempts: [0], stage: 'middle' },
      { kind: 'freeze', fraction: 0.015, attempts: [0], stage: 'middle', durationMs: 6000 },
      { kind: 'hang', fraction: 0.03, attempts: [0], stage: 'middle', durationMs: 30_000 },
    ],
  };
}

/** A demo worker's configuration; `faults` replaces the default fault mix (`faultMix(seed)`). */
export function workerConfig(
  c: DemoConnections,
  workerId: string,
  seed: string,
  faults: ConfigDocument = faultMix(seed),
): ConfigDocument {
  return {
    workerId,
    database: { url: c.databaseUrl, poolSize: 4 },
    redis: { url: c.redisUrl },
    keyPrefix: c.keyPrefix,
    concurrency: 2,
    heartbeat: { intervalMs: 250, livenessTimeoutMs: HEARTBEAT_TIMEOUT_MS, progressTimeoutMs: 6000 },
    progressWriteIntervalMs: 500,
    recovery: { defaultMaxRetries: 3, backoff: { baseMs: 300, maxMs: 3000 } },
    dispatcher: { intervalMs: 300, scheduleTimeoutMs: 5000, bundleSize: 5, bundleMaxWaitMs: 2000 },
    shutdown: { graceMs: 1500, closeTimeoutMs: 5000 },
    http: { port: null },
    faults,
    log: { level: 'info', pretty: false },
  };
}

export function monitorConfig(c: DemoConnections, monitorId: string): ConfigDocument {
  const routes: ConfigDocument[] = [{ levels: ['ERROR', 'WARNING'], email: ['data-ops@example.org'] }];
  if (c.slackChannel !== undefined) routes.push({ levels: ['ERROR'], slack: [c.slackChannel] });
  return {
    monitorId,
    database: { url: c.databaseUrl, poolSize: 6 },
    redis: { url: c.redisUrl },
    keyPrefix: c.keyPrefix,
    monitor: {
      livenessTimeoutMs: HEARTBEAT_TIMEOUT_MS,
      heartbeatIntervalMs: 250,
      progressTimeoutMs: 6000,
      loopIntervalMs: 10_000,
      leaseMs: 2000,
      cleanupPartials: true,
      scheduleTimeoutMs: 10_000,
    },
    recovery: { defaultMaxRetries: 3, backoff: { baseMs: 300, maxMs: 3000 } },
    notifier: {
      email: {
        host: '127.0.0.1',
        port: c.smtpPort,
        ignoreTLS: true,
        from: 'CCAT demo <ccat-demo@example.org>',
        maxPerMinute: 1000,
        connectionTimeoutMs: 2000,
        greetingTimeoutMs: 2000,
        socketTimeoutMs: 5000,
      },
      routes,
      dedup: { windowMs: 5000, maxExamples: 5 },
      retry: { maxAttempts: 30, baseMs: 500, maxMs: 4000 },
      relay: { pollIntervalMs: 250 },
    },
    http: { port: null },
    log: { level: 'info', pretty: false },
  };
}
