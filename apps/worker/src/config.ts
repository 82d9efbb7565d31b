// Over 300 lines: one schema, each option with its description beside it as zod metadata (the docs are generated from it).
// The worker's configuration: one schema composed of the packages' own (DESIGN §8). Sources, later
// wins: defaults → JSON file (--config / CCAT_CONFIG) → environment (CCAT_…, DATABASE_URL, REDIS_URL).
import { checkOperationTypeKeys, OPERATION_TYPES, schemaNameSchema } from '@ccat/db';
import { recoveryPolicySchema } from '@ccat/recovery-handlers';
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
import { z } from 'zod';
import { faultsSchema } from './faults.js';

/**
 * The heartbeat emitter's own bounds (packages/heartbeat/src/options.ts): a beat interval of at most
 * 1 h, liveness and progress bounds of at most 7 days. Refused here, at start: past them every
 * task's registration would fail and run without a heartbeat (recovered while alive).
 */
const MAX_BEAT_INTERVAL_MS = 3_600_000;
const MAX_TASK_TIMEOUT_MS = 7 * 24 * 3_600_000;
const operationType = z.enum(OPERATION_TYPES);

/**
 * A key that was removed: still accepted by the schema so the refusal can say what replaced it
 * (see `removedKey`), never used.
 */
const removed = z.unknown().optional();

const timeoutsSchema = z.strictObject({
  timeoutMs: removed.describe(
    "Removed (refused): liveness is per process (`heartbeat.livenessTimeoutMs`); this type's old value is its progressTimeoutMs.",
  ),
  progressTimeoutMs: optionalDurationMsSchema(20, MAX_TASK_TIMEOUT_MS).describe(
    "The seed's `heartbeat_timeout` for this type: a task whose progress has not changed for this long is stalled even while its process beats.",
  ),
});

export const workerConfigSchema = z
  .strictObject({
    workerId: z
      .string()
      .min(1)
      .max(200)
      .optional()
      .describe(
        "Names this process in rows (claimed_by), events and logs. Default `<host>-<pid>`. One live process per id: a process started with the id of another live process is refused (exit 2, SERVICE_NAME_IN_USE); one restarted after a crash waits for its predecessor's health record to expire (at most heartbeat.livenessTimeoutMs) before it works. The check reads that record: if Redis lost it, a second process is not refused, and the first one then stops itself at its next beat (its tasks are released and run again; nothing is committed twice). Give each process its own id.",
      ),
    database: databaseConfigSchema(schemaNameSchema).describe(
      'PostgreSQL: the operation tables, their events and the notification outbox.',
    ),
    redis: redisConfigSchema.describe('Redis: heartbeats, service health keys and the BullMQ queues.'),
    keyPrefix: keyPrefixSchema.describe(
      "Prefix of every Redis key (heartbeats, health keys, BullMQ queues), so Redis can be shared. Every key also carries one Redis Cluster hash tag: the prefix's own `{tag}` when it has one (`ccat:{ccat}:`), else the prefix without trailing colons (`ccat:` → keys under `ccat:{ccat}:`, BullMQ's under `ccat:{ccat}:bull`).",
    ),
    serve: z
      .union([
        z.literal('all'),
        z
          .array(
            z.strictObject({
              site: z.string().describe("A site's short name (sites.short_name)."),
              location: z
                .string()
                .describe('The name of an active data location at that site (data_locations.name).'),
            }),
          )
          .min(1),
      ])
      .default('all')
      .describe(
        "The data locations this worker can reach: 'all', or a list of { site, location } (site short names).",
      ),
    operationTypes: z
      .array(operationType)
      .min(1)
      .default([...OPERATION_TYPES])
      .describe('Only these operation types (default: all six).'),
    concurrency: z.number().int().min(1).max(1000).default(4).describe('Jobs run at once per queue.'),
    heartbeat: z
      .strictObject({
        intervalMs: ms(4_000, 10, MAX_BEAT_INTERVAL_MS).describe(
          'One beat, for every task this process runs, per interval (one Redis round trip). livenessTimeoutMs must be at least twice this.',
        ),
        livenessTimeoutMs: ms(12_000, 20, MAX_TASK_TIMEOUT_MS).describe(
          "Process liveness (DESIGN §5): a process silent for this long (crashed, frozen, cut off) has its tasks recovered. Default 12 s = 3 beats. Published in this worker's health record with intervalMs: the monitors' reconciliation waits this long (when longer than monitor.livenessTimeoutMs) before recovering a task of this live worker whose heartbeat is missing. Keep monitor.livenessTimeoutMs the same, or the monitor finds this worker's dead tasks late.",
        ),
        timeoutMs: removed.describe('Removed (refused): see livenessTimeoutMs and progressTimeoutMs.'),
        progressTimeoutMs: ms(3_600_000, 20, MAX_TASK_TIMEOUT_MS).describe(
          "Task progress: the seed's heartbeat_timeout (default 3600 s, per type below). A task whose progress has not changed for this long is stalled even while its process beats (hung I/O). At least livenessTimeoutMs.",
        ),
        registerOnNextBeat: z
          .boolean()
          .default(true)
          .describe(
            "Register a task with the next beat rather than at its claim, so a task shorter than one interval never touches Redis. A process that dies before its task's first beat is found by the monitor's reconciliation, which wakes when that task's database sign of life reaches the timeout.",
          ),
        operationTypes: z
          .partialRecord(operationType, timeoutsSchema)
          .default({})
          .describe('Per operation type overrides.'),
      })
      .prefault({})
      .describe(
        "Heartbeats to Redis while tasks run: one round trip per interval for all of this process's tasks.",
      ),
    progressWriteIntervalMs: ms(30_000, 10).describe(
      'How often a running task also writes a sign of life to PostgreSQL (survives a Redis loss).',
    ),
    transitions: z
      .strictObject({
        maxBatch: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(100)
          .describe('Most rows in one statement; 1 sends every claim and completion alone.'),
        maxInFlight: z
          .number()
          .int()
          .min(1)
          .max(1000)
          .default(1)
          .describe(
            'Statements in flight at once per operation type and transition; calls beyond wait and ride together in the next (1 batches most; more lets one slow statement hold up fewer calls).',
          ),
      })
      .prefault({})
      .describe(
        'Group commit: claims (and completions) of one operation type waiting at the same moment share one statement, each row still fenced on its own status and attempt.',
      ),
    recovery: recoveryPolicySchema
      .prefault({})
      .describe(
        "Retry limits and backoff for failures in this worker (the monitor's own `recovery` governs stalls).",
      ),
    dispatcher: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Run the dispatcher in this process.'),
        intervalMs: ms(5_000, 10).describe('Pause between dispatcher passes.'),
        batchSize: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(500)
          .describe(
            'Rows per operation type per pass: due pending rows dispatched, and scheduled rows checked.',
          ),
        scheduleTimeoutMs: ms(300_000, 10).describe(
          'A scheduled row not claimed for this long has its job checked and re-created if it vanished.',
        ),
        bundleSize: z
          .number()
          .int()
          .min(1)
          .max(10_000)
          .default(10)
          .describe('Raw data packages per transfer package, and how long a partial bundle may wait.'),
        bundleMaxWaitMs: ms(600_000, 0).describe(
          'A partial bundle is made anyway once its oldest raw data package has waited this long.',
        ),
      })
      .prefault({})
      .describe(
        'The dispatcher: due pending rows become scheduled rows with a BullMQ job, vanished jobs are re-created, completed raw data packages are bundled. Safe in several processes at once.',
      ),
    shutdown: z
      .strictObject({
        graceMs: ms(4_000, 0).describe(
          'Running tasks get this long to finish after SIGTERM; then they are aborted and released (back to pending, no retry counted).',
        ),
        closeTimeoutMs: ms(2_000, 100).describe(
          'Releasing aborted tasks and closing connections may take this long before the process exits anyway.',
        ),
      })
      .prefault({})
      .describe(
        "Graceful shutdown on SIGTERM/SIGINT (a second signal forces it). The whole shutdown ends within graceMs + closeTimeoutMs + 2 s (8 s at the defaults: under Docker's 10 s stop timeout and Kubernetes' 30 s grace); raise the platform's grace above it when raising these.",
      ),
    http: httpConfigSchema(9464),
    transport: z
      .discriminatedUnion('kind', [
        z.strictObject({
          kind: z
            .literal('local')
            .describe("`local`: a file copy on this host (both sites' locations mounted here)."),
        }),
        z.strictObject({
          kind: z.literal('command').describe('`command`: run an external copy command (rsync, bbcp…).'),
          command: z
            .array(z.string())
            .min(3)
            .describe(
              'argv of the copy command; `{source}` and `{destination}` are replaced, e.g. `["rsync", "--partial", "{source}", "{destination}"]`. Its program must be installed where the worker runs (the worker image has rsync, not bbcp): the worker refuses to start (exit 2) when it is not found in PATH or not executable.',
            ),
          nonRetryableExitCodes: z
            .array(z.number().int())
            .default([])
            .describe(
              'Exit codes a retry will not fix (the operation fails at once); other failures are retried.',
            ),
          killGraceMs: ms(5000, 0, 600_000).describe(
            "On abort the command's process group gets SIGTERM, then SIGKILL after this many ms; the attempt ends only when the group is gone.",
          ),
          isolation: z
            .enum(['auto', 'pid-namespace', 'process-group'])
            .default('auto')
            .describe(
              "How the command is kept from outliving its task. `pid-namespace`: it runs in a PID namespace of its own (`unshare --pid --fork --kill-child`, with `--user --map-root-user` when not root); when the command ends or is killed the kernel kills every process in it, daemonized (setsid) children included, before the copy settles. `process-group`: its process group is ended, then every process that inherited this run's marker variable (`CCAT_TRANSPORT_RUN`) is killed, and a copy whose destination another process still holds open is refused; a child that clears its environment and opens the file only later is not seen. `auto` (default): `pid-namespace` when the probe at start succeeds, else `process-group` (to know which: run `unshare --pid --fork --kill-child true` as the worker's user, then with `--user --map-root-user` first).",
            ),
        }),
      ])
      .default({ kind: 'local' })
      .describe(
        'How data_transfer copies bytes between sites; either way the checksum of what arrived is verified. Absent: `{ "kind": "local" }`; given, `kind` is required.',
      ),
    faults: faultsSchema.prefault({}).describe('Fault injection for tests and the demo; off by default.'),
    log: logConfigSchema.describe('Logging (pino JSON lines on stdout).'),
  })
  .superRefine((c, ctx) => {
    const keys = { section: 'heartbeat', interval: 'intervalMs', removed: 'timeoutMs' };
    checkHeartbeatBounds(ctx, c.heartbeat, keys);
    checkOperationTypeKeys(c.recovery.operationTypes, ['recovery', 'operationTypes'], ctx);
  });

export type WorkerConfig = z.output<typeof workerConfigSchema>;
export type WorkerConfigInput = z.input<typeof workerConfigSchema>;

/** Well-known variables (DESIGN §8): the worker reads only the ones every service does. */
export const ENV_ALIASES = SERVICE_ENV_ALIASES;

/** The well-known variables that hold secrets: each may come from a file named by `NAME_FILE`. */
export const WORKER_SECRET_FILES: readonly (keyof typeof ENV_ALIASES)[] = SERVICE_SECRET_FILES;

/**
 * Validates configuration from its sources; throws ConfigurationError with one line per problem.
 * `CCAT_…` variables that are not this app's keys nor near one (another app's, Kubernetes service
 * links) are left unread and passed to `onIgnored`.
 */
export function loadWorkerConfig(
  sources: Pick<ConfigSources, 'file' | 'fileName' | 'env' | 'onIgnored'>,
): Readonly<WorkerConfig> {
  return resolveConfig(workerConfigSchema, { ...sources, aliases: ENV_ALIASES, ignore: ['CCAT_CONFIG'] });
}

/**
 * The two bounds a task of `type` is tracked with: `livenessTimeoutMs` (the process's, the same for
 * every type: the heartbeat member's deadline is the last beat + this) and `progressTimeoutMs`
 * (the seed's heartbeat_timeout for this type: the last progress change + this).
 */
export function timeoutsFor(
  config: WorkerConfig,
  type: (typeof OPERATION_TYPES)[number],
): { livenessTimeoutMs: number; progressTimeoutMs: number } {
  const t = config.heartbeat.operationTypes[type];
  return {
    livenessTimeoutMs: config.heartbeat.livenessTimeoutMs,
    progressTimeoutMs: t?.progressTimeoutMs ?? config.heartbeat.progressTimeoutMs,
  };
}
