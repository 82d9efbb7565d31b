// Over 300 lines: one schema, each option with its description beside it as zod metadata (the docs are generated from it).
// The monitor-runner's configuration: the monitor loop, reconciliation, the notification relay,
// metrics. Sources, later wins (DESIGN §8): defaults → JSON file (--config / CCAT_CONFIG) →
// environment (CCAT_…, DATABASE_URL, REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN).
import { checkOperationTypeKeys, OPERATION_TYPES, schemaNameSchema, type OperationType } from '@ccat/db';
import {
  checkHeartbeatBounds,
  databaseConfigSchema,
  durationMsSchema as ms,
  httpConfigSchema,
  keyPrefixSchema,
  logConfigSchema,
  optionalDurationMsSchema,
  redisConfigSchema,
  resolveConfig,
  SERVICE_ENV_ALIASES,
  SERVICE_SECRET_FILES,
  type ConfigSources,
} from '@ccat/service';
import { notifierConfigSchema } from '@ccat/notifier';
import { recoveryPolicySchema } from '@ccat/recovery-handlers';
import { z } from 'zod';

/** A removed key: accepted by the schema only so that its refusal can say what replaced it. */
const removed = z.unknown().optional();

const operationType = z.enum(OPERATION_TYPES);

export const monitorConfigSchema = z
  .strictObject({
    monitorId: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe('Names this replica in events, logs and its health key. Default `<host>-<pid>`.'),
    database: databaseConfigSchema(schemaNameSchema).describe(
      'PostgreSQL: the operation tables, their events and the notification outbox.',
    ),
    redis: redisConfigSchema.describe(
      "Redis: the heartbeats the workers write, service health keys, the monitors' lease.",
    ),
    keyPrefix: keyPrefixSchema.describe(
      "Must match the workers' keyPrefix: the heartbeats and health keys live under it (and under its Redis Cluster hash tag: the prefix's own `{tag}`, else the prefix without trailing colons).",
    ),
    monitor: z
      .strictObject({
        livenessTimeoutMs: ms(12_000, 20).describe(
          "Process liveness: the workers' heartbeat.livenessTimeoutMs (default 12 s). The heartbeat deadlines are set by the workers; this one bounds the loop's sleep and drives reconciliation (a task with no heartbeat member, e.g. one that died before its first beat, is recovered about this long after its last sign of life).",
        ),
        heartbeatIntervalMs: ms(4_000, 10).describe(
          "The workers' heartbeat.intervalMs (default 4 s). A live process re-registers a member Redis lost on its next beat, so reconciliation recovers a row only when its member stayed missing for longer than this (and at least livenessTimeoutMs − this − 1 s).",
        ),
        progressTimeoutMs: ms(3_600_000, 20).describe(
          "Task progress: the workers' heartbeat.progressTimeoutMs (the seed's heartbeat_timeout, default 3600 s; per type below). The deadlines are the workers'; this bounds what a sane deadline is (see deadlineSlackMs).",
        ),
        heartbeatTimeoutMs: removed.describe(
          'Removed (refused): see livenessTimeoutMs and progressTimeoutMs.',
        ),
        loopIntervalMs: ms(300_000, 10).describe(
          'The loop wakes at the earlier of the next heartbeat deadline and this (DESIGN default 300 s).',
        ),
        batchSize: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(2000)
          .describe(
            'Due heartbeat members read per scan (a page, recovered in chunks over recoveryConcurrency lanes) and stale in-progress rows read per reconciliation page. Larger pages recover a mass stall faster; each scan and removal holds Redis for a few milliseconds per 1 000 members.',
          ),
        recoveryConcurrency: z
          .number()
          .int()
          .min(1)
          .max(64)
          .default(4)
          .describe('Recoveries in flight at once (each a short transaction; keep below database.poolSize).'),
        progressStalls: z
          .boolean()
          .default(true)
          .describe('Also recover tasks whose progress stopped while their process beats.'),
        operationTypes: z
          .partialRecord(
            operationType,
            z.strictObject({
              progressTimeoutMs: optionalDurationMsSchema(20).describe(
                "This type's progress timeout: the workers' heartbeat.operationTypes.<type>.progressTimeoutMs.",
              ),
              heartbeatTimeoutMs: removed.describe(
                'Removed (refused): see monitor.livenessTimeoutMs and progressTimeoutMs.',
              ),
              loopIntervalMs: optionalDurationMsSchema(10).describe(
                "How often this type's rows are reconciled against the heartbeats.",
              ),
            }),
          )
          .default({})
          .describe('Per operation type: progress timeout and reconciliation interval.'),
        deadlineSlackMs: ms(3_600_000, 1).describe(
          "A heartbeat deadline further ahead of Redis's now than the longest configured timeout plus this is absurd (+inf, 1e15: it would never come due): the entry is quarantined and its row left to reconciliation.",
        ),
        recoveryRetryMaxMs: ms(60_000, 10).describe(
          'A member whose recovery fails is retried after 1 s, doubling up to this (never a hot loop).',
        ),
        recoveryAlertAfter: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(3)
          .describe('After this many failed recoveries of one member, one ERROR notification names it.'),
        leaseMs: ms(10_000, 100).describe(
          'Replicas take a short Redis lease per pass so they do not repeat the same scan.',
        ),
        cleanupPartials: z
          .boolean()
          .default(false)
          .describe(
            'Remove partial output after a stall recovery (only where this host sees the data locations).',
          ),
        scheduleTimeoutMs: ms(600_000, 10).describe(
          "Report scheduled rows unclaimed for this long (their re-dispatch belongs to the workers' dispatcher).",
        ),
      })
      .prefault({})
      .describe('The stalled-task monitor loop and the reconciliation against the database.'),
    recovery: recoveryPolicySchema
      .prefault({})
      .describe('Retry limits and backoff of stall recoveries: use the same values as the workers.'),
    notifier: notifierConfigSchema
      .prefault({})
      .describe('Notification channels, routing, dedup and the outbox relay.'),
    relay: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe(
            'Run the notification outbox relay in this process; several relays may share the outbox.',
          ),
      })
      .prefault({})
      .describe('Run the outbox relay in this process.'),
    http: httpConfigSchema(9465),
    dashboard: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('Serve the dashboard from this process, on its own port.'),
        host: z
          .string()
          .min(1)
          .default('127.0.0.1')
          .describe(
            'Address it listens on: loopback unless set; any other address requires dashboard.token.',
          ),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(9467)
          .describe('Port of the dashboard; 0 picks a free port.'),
        token: z
          .string()
          .min(16)
          .max(512)
          .optional()
          .describe(
            'Bearer token every request must carry (HTTP Bearer, or Basic with it as password); a secret: DASHBOARD_TOKEN or DASHBOARD_TOKEN_FILE. Required when host is not loopback.',
          ),
        adminToken: z
          .string()
          .min(16)
          .max(512)
          .optional()
          .describe(
            'Without it the dashboard is read-only; with it, a retry is done only when the form carries it. A secret: DASHBOARD_ADMIN_TOKEN or DASHBOARD_ADMIN_TOKEN_FILE.',
          ),
        refreshMs: ms(5_000, 500).describe(
          'How often an open page refreshes its figures (polling, no full reload).',
        ),
        bulkRetryLimit: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(100)
          .describe('The most failed operations one bulk retry resets (each one fenced, separately).'),
      })
      .prefault({})
      .describe(
        "The web dashboard (Now, Failures, Trends, Retry, one operation's history): off unless enabled.",
      ),
    shutdown: z
      .strictObject({
        timeoutMs: ms(8_000, 100).describe(
          "After SIGTERM/SIGINT the current pass finishes; the process exits anyway after this long (default 8 s: under Docker's 10 s stop timeout and Kubernetes' 30 s grace).",
        ),
      })
      .prefault({}),
    log: logConfigSchema.describe('Logging (pino JSON lines on stdout).'),
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
    const keys = { section: 'monitor', interval: 'heartbeatIntervalMs', removed: 'heartbeatTimeoutMs' };
    checkHeartbeatBounds(ctx, c.monitor, keys);
  });

export type MonitorConfig = z.output<typeof monitorConfigSchema>;
export type MonitorConfigInput = z.input<typeof monitorConfigSchema>;

/** Well-known variables (DESIGN §8); secrets have their own so they never sit in a file. */
export const MONITOR_ENV_ALIASES = {
  ...SERVICE_ENV_ALIASES,
  SMTP_PASSWORD: 'notifier.email.auth.pass',
  SLACK_TOKEN: 'notifier.slack.token',
  DASHBOARD_TOKEN: 'dashboard.token',
  DASHBOARD_ADMIN_TOKEN: 'dashboard.adminToken',
} as const;

/** `127.0.0.1`, `::1`, `localhost` and the rest of 127.0.0.0/8: reachable from this host only. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * The well-known variables that hold secrets (the URLs carry the database and Redis passwords, the
 * dashboard's tokens guard it): each may come from a file named by `NAME_FILE` (Docker and
 * Kubernetes secrets mounted as files).
 */
export const MONITOR_SECRET_FILES: readonly (keyof typeof MONITOR_ENV_ALIASES)[] = [
  ...SERVICE_SECRET_FILES,
  'SMTP_PASSWORD',
  'SLACK_TOKEN',
  'DASHBOARD_TOKEN',
  'DASHBOARD_ADMIN_TOKEN',
];

/**
 * Validates configuration from its sources; throws ConfigurationError with one line per problem.
 * `CCAT_…` variables that are not this app's keys nor near one (another app's, Kubernetes service
 * links) are left unread and passed to `onIgnored`.
 */
export function loadMonitorConfig(
  sources: Pick<ConfigSources, 'file' | 'fileName' | 'env' | 'onIgnored'>,
): Readonly<MonitorConfig> {
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

/**
 * How long one monitor-raised alert (`work_unserved`, `liveness_bounds_mismatch`) holds back the next
 * of the same dedup key, ms: the notifier's dedup window, or 10 min when dedup is off.
 */
export function alertWindowMs(config: MonitorConfig): number {
  return config.notifier.dedup.windowMs > 0 ? config.notifier.dedup.windowMs : 600_000;
}
