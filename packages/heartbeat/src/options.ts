// Option schemas. Apps compose them into their own config schema; each resource parses its options
// with them at construction, so bad values stop the process at start with one line per problem.
import { z } from 'zod';

const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** A prefix is either free of braces or carries exactly one non-empty Redis hash tag, e.g. `app:{ccat}:`. */
const KEY_PREFIX = /^(?:[^{}\s]+|[^{}\s]*\{[^{}\s]+\}[^{}\s]*)$/;
const HASH_TAG = /^[^{}\s]+$/;

const keyspaceShape = {
  /** Start of every key (default `ccat:`), so Redis can be shared with other services. */
  keyPrefix: z
    .string()
    .max(128)
    .regex(KEY_PREFIX, 'a non-empty prefix without whitespace, braces only as one {hash-tag}')
    .default('ccat:'),
  /** Redis Cluster hash tag; default: the prefix without trailing colons. Not allowed when the prefix has one. */
  hashTag: z.string().max(64).regex(HASH_TAG, 'a non-empty tag without braces or whitespace').optional(),
};

function prefixAndTagAgree(
  value: { keyPrefix: string; hashTag?: string | undefined },
  ctx: z.RefinementCtx,
): void {
  if (value.hashTag !== undefined && value.keyPrefix.includes('{')) {
    ctx.addIssue({
      code: 'custom',
      path: ['hashTag'],
      message: 'no hashTag when keyPrefix already carries a {hash tag}',
      input: value.hashTag,
    });
  }
}

/** Where this package's keys live; see `heartbeatKeys` for how keys are formed. */
export const keyspaceOptionsSchema = z.strictObject(keyspaceShape).superRefine(prefixAndTagAgree);

/** Worker-side emitter options (all have defaults). */
export const heartbeatOptionsSchema = z
  .strictObject({
    ...keyspaceShape,
    /** One beat (one round trip for all tracked tasks) every intervalMs. */
    intervalMs: ms(10, 3_600_000).default(4_000),
    /**
     * Liveness (DESIGN §5): a member's deadline is its last beat + this, so a process silent this
     * long (crashed, frozen, cut off) has its tasks expire. Default 12 s = 3 beats; at least two
     * intervals. `track` may override it per task.
     */
    timeoutMs: ms(20, 7 * 24 * 3_600_000).default(12_000),
    /**
     * Progress: the default progress timeout per task (the seed's `heartbeat_timeout`, 3600 s in
     * the CCAT worker, which refuses one under its liveness bound); absent: progress stalls are not
     * watched unless `track` asks.
     */
    progressTimeoutMs: ms(20, 7 * 24 * 3_600_000).optional(),
    /** Bound on every Redis call (beat, registration, removal); a call that takes longer counts as failed. */
    commandTimeoutMs: ms(10, 600_000).default(5_000),
    /**
     * Send an untracked task's removal with the next beat instead of at once: one round trip less
     * per task for busy workers. Safe because a member cannot expire before the next beat (every
     * timeout is at least two intervals); listings may show a finished task for up to one interval.
     */
    removeOnNextBeat: z.boolean().default(false),
    /**
     * `track` resolves at once and the registration rides on the next beat: a task that ends within
     * one interval never touches Redis. Until its first beat a task has no member, so a process
     * that dies in that window is found by the monitor's reconciliation (its database sign of life),
     * not by a deadline; listings show a task from its first beat on.
     */
    registerOnNextBeat: z.boolean().default(false),
    /** A beat for more tasks than this is split into several scripts sent in one pipeline (one round trip). */
    maxTasksPerScript: z.number().int().min(1).max(100_000).default(5_000),
  })
  .superRefine((v, ctx) => {
    prefixAndTagAgree(v, ctx);
    if (v.timeoutMs < 2 * v.intervalMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['timeoutMs'],
        message: `timeoutMs >= 2 * intervalMs (${2 * v.intervalMs})`,
        input: v.timeoutMs,
      });
    }
    if (v.progressTimeoutMs !== undefined && v.progressTimeoutMs < 2 * v.intervalMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['progressTimeoutMs'],
        message: `progressTimeoutMs >= 2 * intervalMs (${2 * v.intervalMs})`,
        input: v.progressTimeoutMs,
      });
    }
  });

/** Monitor-side scanner options. */
export const scannerOptionsSchema = z
  .strictObject({
    ...keyspaceShape,
    /** Most members one scan returns (the LIMIT of the range query). */
    batchSize: z.number().int().min(1).max(10_000).default(1_000),
    /**
     * The furthest ahead of Redis's now a deadline or progress deadline may lie: the longest
     * timeout any worker is configured with, plus slack. A member scored beyond it (+inf, 1e15)
     * would never come due, so the scans quarantine it (`absurd-score`) and its row is left to
     * reconciliation. Absent: not checked.
     */
    maxDeadlineAheadMs: ms(1, 365 * 24 * 3_600_000).optional(),
  })
  .superRefine(prefixAndTagAgree);

/** Service health key options: TTL 90 s refreshed every 30 s by default, as the CCAT services do. */
export const healthOptionsSchema = z
  .strictObject({
    ...keyspaceShape,
    ttlMs: ms(100, 86_400_000).default(90_000),
    refreshMs: ms(10, 86_400_000).default(30_000),
    commandTimeoutMs: ms(10, 600_000).default(5_000),
  })
  .superRefine((v, ctx) => {
    prefixAndTagAgree(v, ctx);
    if (v.refreshMs >= v.ttlMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['refreshMs'],
        message: `refreshMs < ttlMs (${v.ttlMs})`,
        input: v.refreshMs,
      });
    }
  });

export type KeyspaceOptions = z.input<typeof keyspaceOptionsSchema>;
export type HeartbeatOptions = z.input<typeof heartbeatOptionsSchema>;
export type ScannerOptions = z.input<typeof scannerOptionsSchema>;
export type HealthOptions = z.input<typeof healthOptionsSchema>;
