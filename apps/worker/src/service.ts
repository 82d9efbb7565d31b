// What every CCAT service process shares (the worker here, the monitor-runner through this app's
// exports): its connection and logging configuration sections, its logger, and an ordered
// shutdown in which every step runs even when one fails.
import { classifyError } from '@ccat/errors';
import { pino, type Logger } from 'pino';
import { z } from 'zod';

/** PostgreSQL: the operation tables, their events and the notification outbox. */
export const databaseConfigSchema = z
  .strictObject({
    /** PostgreSQL connection URL, `postgres://user:password@host:port/database`. */
    url: z.string().min(1).default('postgres://postgres@127.0.0.1:5432/postgres'),
    /** Schema holding the tables (the connection's search_path); a lower-case identifier, checked at start. */
    schema: z.string().default('public'),
    /** Connections in this process's PostgreSQL pool. */
    poolSize: z.number().int().min(1).max(100).default(10),
    /** Run migrations at start. */
    migrate: z.boolean().default(false),
    /**
     * Prepare each statement once per connection (server-side named statements): the hot
     * transitions skip parsing and planning. Turn off behind a pooler that cannot keep them
     * (PgBouncer in transaction mode before 1.21, or without max_prepared_statements).
     */
    preparedStatements: z.boolean().default(true),
  })
  .prefault({});

/** Redis: heartbeats, service health keys, the BullMQ queues and the monitors' lease. */
export const redisConfigSchema = z
  .strictObject({
    /** Redis connection URL, `redis://[:password@]host:port[/db]`. */
    url: z.string().min(1).default('redis://127.0.0.1:6379'),
  })
  .prefault({});

/** Prefix of every Redis key (heartbeats, health keys, BullMQ queues); workers and monitors of one deployment share it. */
export const keyPrefixSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(/^[^{}\s]+$/)
  .default('ccat:');

/** Logging (pino JSON lines). */
export const logConfigSchema = z
  .strictObject({
    /** Lowest level logged. */
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /** Human-readable lines; 'auto' = when stdout is a terminal. */
    pretty: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  })
  .prefault({});

export type LogConfig = z.output<typeof logConfigSchema>;

/**
 * The process logger: JSON lines, or pino-pretty when asked (or 'auto' and a terminal); secrets and
 * URLs (which may carry passwords) redacted.
 */
export function createServiceLogger(
  config: LogConfig,
  base: Record<string, unknown>,
  isTTY: boolean,
): Logger {
  const pretty = config.pretty === 'auto' ? isTTY : config.pretty;
  const options = {
    level: config.level,
    base,
    redact: {
      paths: ['password', '*.password', 'pass', '*.pass', 'token', '*.token', 'url', '*.url'],
      censor: '[redacted]',
    },
  };
  return pretty
    ? pino(options, pino.transport({ target: 'pino-pretty', options: { colorize: true } }))
    : pino(options);
}

/** Runs every step in order, even after one fails; logs each failure; throws them together at the end. */
export async function shutdownSteps(
  log: Logger,
  steps: readonly (readonly [string, () => Promise<unknown>])[],
): Promise<void> {
  const errors: unknown[] = [];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
      log.warn({ step: what, err: classifyError(e).message }, 'shutdown step failed');
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'shutdown had failures');
}
