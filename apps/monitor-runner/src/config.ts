// The monitor-runner's configuration: the monitor loop, reconciliation, the notification relay,
// metrics. Sources, later wins (DESIGN §8): defaults → JSON file (--config / CCAT_CONFIG) →
// environment (CCAT_…, DATABASE_URL, REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN).
import { OPERATION_TYPES, type OperationType } from '@ccat/db';
import {
  checkOperationTypeKeys,
  databaseConfigSchema,
  keyPrefixSchema,
  logConfigSchema,
  redisConfigSchema,
  resolveConfig,
} from '@ccat/service';
import { notifierConfigSchema } from '@ccat/notifier';
import { recoveryPolicySchema } from '@ccat/recovery-handlers';
import { z } from 'zod';

/** The longest delay a Node.js timer takes (2^31 − 1 ms): a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;
const ms = (dflt: number, min = 1) => z.number().int().min(min).max(MAX_TIMER_MS).default(dflt);
/** A removed key: accepted by the schema only so that its refusal can say what replaced it. */
const removed = z.unknown().optional();

/** What the removed monitor.heartbeatTimeoutMs became (docs/runbook.md, "Liveness and progress"). */
export const REMOVED_MONITOR_TIMEOUT_KEY =
  'removed: liveness and progress have separate bounds now. The old value was the seed\'s heartbeat_timeout: set it as progressTimeoutMs (at the same level); process liveness is monitor.livenessTimeoutMs (default 12 s, the workers\' heartbeat.livenessTimeoutMs). See docs/runbook.md, "Liveness and progress"';
const operationType = z.enum(OPERATION_TYPES);

export const monitorConfigSchema = z
  .strictObject({
    /** Names this replica in events, logs and its health key. Default `<host>-<pid>`. */
    monitorId: z.string().min(1).max(200).optional(),
    /** PostgreSQL: the operation tables, their events and the notification outbox. */
    database: databaseConfigSchema,
    /** Redis: the heartbeats the workers write, service health keys, the monitors' lease. */
    redis: redisConfigSchema,
    /** Must match the workers' keyPrefix: the heartbeats and health keys live under it. */
    keyPrefix: keyPrefixSchema,
    /** The stalled-task monitor loop and the reconciliation against the database. */
    monitor: z
      .strictObject({
        /**
         * Process liveness: the workers' heartbeat.livenessTimeoutMs (default 12 s). The heartbeat
         * deadlines are set by the workers; this one bounds the loop's sleep and drives reconciliation
         * (a task with no heartbeat member, e.g. one that died before its first beat, is recovered
         * about this long after its last sign of life).
         */
        livenessTimeoutMs: ms(12_000, 20),
        /**
         * The workers' heartbeat.intervalMs (default 4 s). A live process re-registers a member Redis
         * lost on its next beat, so reconciliation recovers a row only when its member stayed missing
         * for longer than this (and at least livenessTimeoutMs − this − 1 s).
         */
        heartbeatIntervalMs: ms(4_000, 10),
        /**
         * Task progress: the workers' heartbeat.progressTimeoutMs (the seed's heartbeat_timeout,
         * default 3600 s; per type below). The deadlines are the workers'; this bounds what a sane
         * deadline is (see deadlineSlackMs).
         */
        progressTimeoutMs: ms(3_600_000, 20),
        /** Removed (refused): see livenessTimeoutMs and progressTimeoutMs. */
        heartbeatTimeoutMs: removed,
        /** The loop wakes at the earlier of the next heartbeat deadline and this (DESIGN default 300 s). */
        loopIntervalMs: ms(300_000, 10),
        /** Members handled per scan. */
        batchSize: z.number().int().min(1).max(10_000).default(500),
        /** Recoveries in flight at once (each a short transaction; keep below database.poolSize). */
        recoveryConcurrency: z.number().int().min(1).max(64).default(4),
        /** Also recover tasks whose progress stopped while their process beats. */
        progressStalls: z.boolean().default(true),
        /** Per operation type: progress timeout and reconciliation interval. */
        operationTypes: z
          .partialRecord(
            operationType,
            z.strictObject({
              /** This type's progress timeout: the workers' heartbeat.operationTypes.<type>.progressTimeoutMs. */
              progressTimeoutMs: z.number().int().min(20).max(MAX_TIMER_MS).optional(),
              /** Removed (refused): see monitor.livenessTimeoutMs and progressTimeoutMs. */
              heartbeatTimeoutMs: removed,
              /** How often this type's rows are reconciled against the heartbeats. */
              loopIntervalMs: z.number().int().min(10).max(MAX_TIMER_MS).optional(),
            }),
          )
          .default({}),
        /**
         * A heartbeat deadline further ahead of Redis's now than the longest configured timeout plus
         * this is absurd (+inf, 1e15: it would never come due): the entry is quarantined and its row
         * left to reconciliation.
         */
        deadlineSlackMs: ms(3_600_000, 1),
        /** A member whose recovery fails is retried after 1 s, doubling up to this (never a hot loop). */
        recoveryRetryMaxMs: ms(60_000, 10),
        /** After this many failed recoveries of one member, one ERROR notification names it. */
        recoveryAlertAfter: z.number().int().min(1).max(1000).default(3),
        /** Replicas take a short Redis lease per pass so they do not repeat the same scan. */
        leaseMs: ms(10_000, 100),
        /** Remove partial output after a stall recovery (only where this host sees the data locations). */
        cleanupPartials: z.boolean().default(false),
        /** Report scheduled rows unclaimed for this long (their re-dispatch belongs to the workers' dispatcher). */
        scheduleTimeoutMs: ms(600_000, 10),
      })
      .prefault({}),
    /** Retry limits and backoff of stall recoveries: use the same values as the workers. */
    recovery: recoveryPolicySchema.prefault({}),
    /** Notification channels, routing, dedup and the outbox relay. */
    notifier: notifierConfigSchema.prefault({}),
    /** Run the outbox relay in this process. */
    relay: z
      .strictObject({
        /** Run the notification outbox relay in this process; several relays may share the outbox. */
        enabled: z.boolean().default(true),
      })
      .prefault({}),
    /** The HTTP server for /metrics (Prometheus), /healthz and /readyz. */
    http: z
      .strictObject({
        /** Address the HTTP server listens on. */
        host: z.string().default('127.0.0.1'),
        /** /metrics, /healthz, /readyz; 0 picks a free port, null turns it off. */
        port: z.number().int().min(0).max(65535).nullable().default(9465),
      })
      .prefault({}),
    /** The web dashboard (Now, Failures, Trends, Retry, one operation's history): off unless enabled. */
    dashboard: z
      .strictObject({
        /** Serve the dashboard from this process, on its own port. */
        enabled: z.boolean().default(false),
        /** Address it listens on: loopback unless set; any other address requires dashboard.token. */
        host: z.string().min(1).default('127.0.0.1'),
        /** Port of the dashboard; 0 picks a free port. */
        port: z.number().int().min(0).max(65535).default(9467),
        /** Bearer token every request must carry (HTTP Bearer, or Basic with it as password); a secret: DASHBOARD_TOKEN or DASHBOARD_TOKEN_FILE. Required when host is not loopback. */
        token: z.string().min(16).max(512).optional(),
        /** Without it the dashboard is read-only; with it, a retry is done only when the form carries it. A secret: DASHBOARD_ADMIN_TOKEN or DASHBOARD_ADMIN_TOKEN_FILE. */
        adminToken: z.string().min(16).max(512).optional(),
        /** How often an open page refreshes its figures (polling, no full reload). */
        refreshMs: ms(5_000, 500),
        /** The most failed operations one bulk retry resets (each one fenced, separately). */
        bulkRetryLimit: z.number().int().min(1).max(1000).default(100),
      })
      .prefault({}),
    shutdown: z
      .strictObject({
        /** After SIGTERM/SIGINT the current pass finishes; the process exits anyway after this long. */
        timeoutMs: ms(15_000, 100),
      })
      .prefault({}),
    /** Logging (pino JSON lines on stdout). */
    log: logConfigSchema,
  })
  .superRefine((c, ctx) => {
    // Per-type settings for a type this system does not run are a typo.
    checkOperationTypeKeys(c.recovery.operationTypes, ['recovery', 'operationTypes'], ctx);
    // A dashboard reachable from elsewhere never answers without a token.
    const d = c.dashboard;
    if (d.enabled && !isLoopbackHost(d.host) && d.token === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['dashboard', 'token'],
        message: `required when dashboard.host is not loopback (${d.host}): set DASHBOARD_TOKEN or DASHBOARD_TOKEN_FILE`,
        input: undefined,
      });
    // The bounds must be consistent with each other, as the workers' are (DESIGN §5).
    const m = c.monitor;
    const issue = (path: (string | number)[], message: string, input: unknown) =>
      ctx.addIssue({ code: 'custom', path, message, input });
    if (m.livenessTimeoutMs < 2 * m.heartbeatIntervalMs)
      issue(
        ['monitor', 'livenessTimeoutMs'],
        `must be at least 2 × monitor.heartbeatIntervalMs (${2 * m.heartbeatIntervalMs})`,
        m.livenessTimeoutMs,
      );
    const checkProgress = (value: number | undefined, path: (string | number)[]) => {
      if (value !== undefined && value < m.livenessTimeoutMs)
        issue(path, `must be at least monitor.livenessTimeoutMs (${m.livenessTimeoutMs})`, value);
    };
    if (m.heartbeatTimeoutMs !== undefined)
      issue(['monitor', 'heartbeatTimeoutMs'], REMOVED_MONITOR_TIMEOUT_KEY, m.heartbeatTimeoutMs);
    checkProgress(m.progressTimeoutMs, ['monitor', 'progressTimeoutMs']);
    for (const [type, t] of Object.entries(m.operationTypes)) {
      if (t?.heartbeatTimeoutMs !== undefined)
        issue(
          ['monitor', 'operationTypes', type, 'heartbeatTimeoutMs'],
          REMOVED_MONITOR_TIMEOUT_KEY,
          t.heartbeatTimeoutMs,
        );
      checkProgress(t?.progressTimeoutMs, ['monitor', 'operationTypes', type, 'progressTimeoutMs']);
    }
  });

export type MonitorConfig = z.output<typeof monitorConfigSchema>;
export type MonitorConfigInput = z.input<typeof monitorConfigSchema>;

/** Well-known variables (DESIGN §8); secrets have their own so they never sit in a file. */
export const MONITOR_ENV_ALIASES = {
  DATABASE_URL: 'database.url',
  DATABASE_SCHEMA: 'database.schema',
  REDIS_URL: 'redis.url',
  SMTP_PASSWORD: 'notifier.email.auth.pass',
  SLACK_TOKEN: 'notifier.slack.token',
  DASHBOARD_TOKEN: 'dashboard.token',
  DASHBOARD_ADMIN_TOKEN: 'dashboard.adminToken',
} as const;

/** `127.0.0.1`, `::1`, `localhost` and the rest of 127.0.0.0/8: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/** Validates configuration from its sources; throws ConfigurationError with one line per problem. */
export function loadMonitorConfig(sources: {
  file?: unknown;
  fileName?: string;
  env?: Record<string, string | undefined>;
}): Readonly<MonitorConfig> {
  return resolveConfig(monitorConfigSchema, {
    ...sources,
    aliases: MONITOR_ENV_ALIASES,
    ignore: ['CCAT_CONFIG'],
  });
}

/** Progress timeout and reconciliation interval of one operation type (liveness is per process). */
export function monitorTimingFor(
  config: MonitorConfig,
  type: OperationType,
): { progressTimeoutMs: number; loopIntervalMs: number } {
  const t = config.monitor.operationTypes[type];
  return {
    progressTimeoutMs: t?.progressTimeoutMs ?? config.monitor.progressTimeoutMs,
    loopIntervalMs: t?.loopIntervalMs ?? config.monitor.loopIntervalMs,
  };
}
