// What every CCAT service process shares (the worker here, the monitor-runner through this app's
// exports): its connection and logging configuration sections, its logger, and an ordered
// shutdown in which every step runs even when one fails.
import { readFile } from 'node:fs/promises';
import { format, parseArgs } from 'node:util';
import {
  assertSchemaName,
  createDatabase,
  migrateToLatest,
  storableJsonText,
  type CcatDatabase,
} from '@ccat/db';
import {
  boundedKey,
  classifyError,
  isArgumentsKey,
  isSecretKey,
  REDACTED,
  redactSecrets,
  redactValue,
  truncate,
} from '@ccat/errors';
import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { ConnectionFaultLog } from './connectivity.js';
import { z } from 'zod';

/** What a connection URL must look like: its schemes, and an example for messages. */
export interface UrlRule {
  /** Accepted schemes without the colon, e.g. `['redis', 'rediss']`. */
  readonly schemes: readonly string[];
  /** The URL's form, shown when it cannot be parsed at all. */
  readonly form: string;
  /** Whether a URL without a host may name one elsewhere (libpq's `?host=/run/postgresql`). */
  readonly hostParam?: boolean;
  /** Whether the path, when there is one, is a database number (`/0`, `/3`), as in Redis URLs. */
  readonly numberedDatabase?: boolean;
}

/** The authority part of `scheme://[userinfo@]host[:port]`: host and the port text as written. */
const AUTHORITY = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)(?::([^/?#]*))?/;

/**
 * What is wrong with a connection URL, one phrase per problem (empty when nothing is): the scheme,
 * a host, a port in 1–65535, the rest parseable (WHATWG URL), and for `numberedDatabase` rules a
 * path that is a database number. The phrases never repeat the URL
 * or any part of it, since it may hold a password.
 */
export function urlProblems(value: string, rule: UrlRule): string[] {
  const schemes = rule.schemes.map((s) => `${s}:`);
  const schemeList =
    schemes.length === 1 ? schemes[0]! : `${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1)!}`;
  const authority = AUTHORITY.exec(value);
  if (authority === null) return [`is not a URL: expected ${rule.form}`];
  const problems: string[] = [];
  const scheme = value.slice(0, value.indexOf(':') + 1).toLowerCase();
  if (!schemes.includes(scheme)) problems.push(`scheme must be ${schemeList}`);
  const host = authority[1] ?? '';
  const port = authority[2];
  let parsed: URL | undefined;
  try {
    // The port is checked on its own below; WHATWG parsing refuses one out of range without saying so.
    const portless = port === undefined ? value : value.replace(`:${port}`, '');
    parsed = new URL(portless);
  } catch {
    problems.push(`cannot be parsed: expected ${rule.form}`);
  }
  const hostElsewhere = rule.hostParam === true && parsed?.searchParams.has('host') === true;
  if (host === '' && !hostElsewhere) problems.push('has no host');
  if (port !== undefined && port !== '') {
    if (!/^[0-9]+$/.test(port)) problems.push('port is not a number: must be from 1 to 65535');
    else if (!(Number(port) >= 1 && Number(port) <= 65535))
      problems.push('port out of range: must be from 1 to 65535');
  }
  // ioredis sends the path to SELECT after connecting: a path that is not a number fails there,
  // after the start, where no configuration check can say what is wrong.
  if (rule.numberedDatabase === true && parsed !== undefined) {
    const path = parsed.pathname;
    if (path !== '' && path !== '/' && !/^\/[0-9]{1,9}$/.test(path))
      problems.push('database (the path) must be a number, e.g. /0');
  }
  return problems;
}

/** A zod string check that reports each of `urlProblems` as its own issue. */
function connectionUrl(rule: UrlRule) {
  return z
    .string()
    .min(1)
    .superRefine((value, ctx) => {
      for (const message of urlProblems(value, rule))
        ctx.addIssue({ code: 'custom', message, input: undefined });
    });
}

/** PostgreSQL URLs as libpq and node-postgres read them. */
export const POSTGRES_URL_RULE: UrlRule = {
  schemes: ['postgres', 'postgresql'],
  form: 'postgres://user[:password]@host[:port]/database',
  hostParam: true,
};
/** Redis URLs as ioredis reads them. */
export const REDIS_URL_RULE: UrlRule = {
  schemes: ['redis', 'rediss'],
  form: 'redis://[user:password@]host[:port][/db]',
  numberedDatabase: true,
};

/** PostgreSQL: the operation tables, their events and the notification outbox. */
export const databaseConfigSchema = z
  .strictObject({
    /**
     * PostgreSQL connection URL, `postgres://user:password@host:port/database`. Checked at start:
     * scheme postgres: or postgresql:, a host (or `?host=` naming a socket directory), a port from
     * 1 to 65535.
     */
    url: connectionUrl(POSTGRES_URL_RULE).default('postgres://postgres@127.0.0.1:5432/postgres'),
    /** Schema holding the tables (the connection's search_path): a lower-case identifier `[a-z_][a-z0-9_]*`, at most 63 characters. */
    schema: z
      .string()
      .default('public')
      .refine(
        (s) => {
          try {
            assertSchemaName(s);
            return true;
          } catch {
            return false;
          }
        },
        { message: 'must be a lower-case identifier [a-z_][a-z0-9_]*, at most 63 characters' },
      ),
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
    /**
     * Bound on each statement's round trip, in ms, measured by the client (0: none). A statement
     * with no answer by then (a frozen server, a connection gone silent) fails as a network timeout
     * and its connection is discarded; works behind a transaction-mode pooler. Migrations at start
     * run without it.
     */
    statementTimeoutMs: z.number().int().min(0).max(3_600_000).default(30_000),
    /** Bound on opening a connection and on waiting for a free one in the pool, in ms (0: none). */
    connectTimeoutMs: z.number().int().min(0).max(600_000).default(10_000),
  })
  .prefault({});

/** Redis: heartbeats, service health keys, the BullMQ queues and the monitors' lease. */
export const redisConfigSchema = z
  .strictObject({
    /**
     * Redis connection URL, `redis://[:password@]host:port[/db]`. Checked at start: scheme redis:
     * or rediss: (TLS), a host, a port from 1 to 65535, a database number as the path if any.
     */
    url: connectionUrl(REDIS_URL_RULE).default('redis://127.0.0.1:6379'),
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

/** Longest string field of a log line (a message, an error message, a context value), in characters. */
export const MAX_LOG_STRING = 8192;
/** Longest log line, in characters: a longer one is replaced by a line that says how long it was. */
export const MAX_LOG_LINE = 65_536;

/** How deep, wide and long a logged value is shown. */
const LOG_VALUE_LIMITS = {
  maxString: MAX_LOG_STRING,
  maxDepth: 6,
  maxArray: 50,
  maxKeys: 50,
  maxNodes: 2000,
};

/**
 * A log object's fields redacted and bounded, by value, before pino serializes them (so the line
 * stays valid JSON): errors keep pino's shape (type, message, stack, code, own properties) and
 * then go through `redactValue` like every other value (secret-named keys, argument vectors such
 * as ioredis `command.args` and child_process `spawnargs`, credentials in strings, long keys).
 */
function safeLogFields(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) {
    const shown = value instanceof Error ? pino.stdSerializers.err(value) : value;
    const safeKey = redactSecrets(boundedKey(key));
    out[safeKey] = isSecretKey(key)
      ? REDACTED
      : Array.isArray(shown) && isArgumentsKey(key)
        ? `${REDACTED} (${shown.length} arguments)`
        : redactValue(shown, LOG_VALUE_LIMITS);
  }
  return out;
}

/**
 * The serialized line made storable and bounded. No redaction here: every value was redacted
 * before serialization (fields, bindings, the formatted message), and a text pass over JSON can
 * break it (quotes put into a string, an escape eaten).
 */
function safeLogLine(line: string): string {
  // storableJsonText: no NUL or lone surrogate, raw or as a JSON escape, reaches a log store.
  if (line.length <= MAX_LOG_LINE) return storableJsonText(line);
  // Cut JSON is not JSON: say what the line was, in a line of its own.
  const head = /^\{"level":(\d+|"[^"]*"),"time":(\d+|"[^"]*")/.exec(line);
  return `${storableJsonText(
    JSON.stringify({
      level: head ? (JSON.parse(head[1]!) as unknown) : 'unknown',
      time: head ? (JSON.parse(head[2]!) as unknown) : Date.now(),
      msg: `log line of ${line.length} characters cut: ${truncate(line, 2000)}`,
      lineTruncated: line.length,
    }),
  )}\n`;
}

/**
 * A log call's arguments made safe: the merging object (first, when not a string) is left to the
 * `log` formatter; the message is formatted with its interpolation arguments here (`util.format`:
 * %s %d %j %o…, objects redacted by value first) and the whole formatted message redacted and cut
 * to MAX_LOG_STRING, so a secret split between the format and an argument (`'password=%s', pw`)
 * is seen whole.
 */
function safeLogArguments(args: readonly unknown[]): unknown[] {
  const at = typeof args[0] === 'string' ? 0 : 1;
  const message = args[at];
  if (typeof message !== 'string') return [...args];
  const rest = args
    .slice(at + 1)
    .map((a) => (typeof a === 'object' && a !== null ? redactValue(a, LOG_VALUE_LIMITS) : a));
  const text = rest.length === 0 ? message : format(message, ...rest);
  return [...args.slice(0, at), redactSecrets(text, MAX_LOG_STRING)];
}

/**
 * The process logger: JSON lines, or pino-pretty when asked (or 'auto' and a terminal). Nothing
 * secret leaves through it and no line is unbounded: every field of a call's object and of a
 * child's bindings is passed through @ccat/errors' `redactValue` (secret-named keys at any depth
 * → `[REDACTED]`, argument vectors by their length, credentials in strings redacted, strings cut
 * at MAX_LOG_STRING, keys cut, shared references and the number of values bounded, errors
 * serialized first), the message is formatted with its arguments and redacted as one text, and the
 * final line is made storable (`storableJsonText`: NUL and lone surrogates, raw or as JSON
 * escapes, become U+FFFD) and bounded by MAX_LOG_LINE. Redaction happens on values before JSON
 * serialization, never on the JSON line, so every line is valid JSON.
 * Cost: measured on the shared 2-core machine with 20 000 lines (test/logger.test.ts prints it):
 * tens of µs per ordinary line against a few µs for plain pino, small next to the database round
 * trip that each logged decision already costs.
 * `destination` (default stdout) is where JSON lines go; tests pass a stream.
 */
export function createServiceLogger(
  config: LogConfig,
  base: Record<string, unknown>,
  isTTY: boolean,
  destination?: DestinationStream,
): Logger {
  const pretty = config.pretty === 'auto' ? isTTY : config.pretty;
  const options: LoggerOptions = {
    level: config.level,
    base,
    formatters: { log: safeLogFields, bindings: safeLogFields },
    // safeLogFields serialized errors already (pino runs formatters before serializers).
    serializers: { err: (value: unknown): unknown => value },
    hooks: {
      logMethod(args, method) {
        method.apply(this, safeLogArguments(args) as Parameters<typeof method>);
      },
      streamWrite: safeLogLine,
    },
  };
  const logger = pretty
    ? pino(options, pino.transport({ target: 'pino-pretty', options: { colorize: true } }))
    : destination === undefined
      ? pino(options)
      : pino(options, destination);
  // pino applies `formatters.bindings` to the base bindings only (a child resets it), so a
  // child's bindings are made safe here; every child inherits this method through its prototype.
  // Called with each logger as `this` (below), as pino's own method expects.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const child = logger.child;
  logger.child = function safeChild(this: Logger, bindings, childOptions) {
    return child.call(this, safeLogFields(bindings), childOptions);
  } as Logger['child'];
  return logger;
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

/** What a service's command line and configuration sources came to: a configuration, or an exit. */
export type ConfigOutcome<C> =
  { readonly config: C } | { readonly exitCode: number; readonly stdout?: string; readonly stderr?: string };

/** Exit 2 with a message for stderr, passed through the one redactor like everything a service prints. */
function failed(message: string): { readonly exitCode: number; readonly stderr: string } {
  return { exitCode: 2, stderr: redactSecrets(message, 20_000) };
}

/** Why a file could not be read, without its path: the system's code (ENOENT, EACCES, EISDIR…). */
function fileErrorReason(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]{1,20}$/.test(code) ? code : 'unreadable';
}

/**
 * Reads `--config file.json` (or CCAT_CONFIG) and the environment into a validated configuration.
 * Secrets named in `secretFiles` may come from files (`NAME_FILE=/run/secrets/name`). Bad arguments,
 * an unreadable file or invalid configuration come back as exit 2 with the message to print: every
 * message is redacted, and a secret file is named by its variable, never by its path or content.
 */
export async function readServiceConfig<C>(o: {
  readonly name: string;
  readonly usage: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly load: (sources: {
    file?: unknown;
    fileName?: string;
    env: Record<string, string | undefined>;
  }) => C;
  readonly secretFiles?: readonly string[];
}): Promise<ConfigOutcome<C>> {
  let args;
  try {
    args = parseArgs({
      args: [...o.argv],
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    // parseArgs quotes the argument it refused, which may be `--password=…`.
    return failed(`${o.name}: ${(e as Error).message}\n${o.usage}`);
  }
  if (args.values.help === true) return { exitCode: 0, stdout: o.usage };
  const fileName = args.values.config ?? (o.env['CCAT_CONFIG'] || undefined);
  const env: Record<string, string | undefined> = { ...o.env };
  for (const name of o.secretFiles ?? []) {
    const path = env[`${name}_FILE`];
    if (path === undefined || env[name] !== undefined) continue;
    try {
      env[name] = (await readFile(path, 'utf8')).trim();
    } catch (e) {
      // Name the variable and the system's reason code, never the path: a secret put in
      // NAME_FILE by mistake (the password instead of its file) would be printed.
      return failed(`${o.name}: cannot read the secret file that ${name}_FILE names (${fileErrorReason(e)})`);
    }
  }
  let file: unknown;
  if (fileName !== undefined) {
    try {
      file = JSON.parse(await readFile(fileName, 'utf8'));
    } catch (e) {
      // JSON.parse quotes the text around a syntax error, which may be a secret: say where, not what.
      const why =
        e instanceof SyntaxError
          ? `not valid JSON${/ at position \d+(?: \(line \d+ column \d+\))?/.exec(e.message)?.[0] ?? ''}`
          : redactSecrets((e as Error).message, 500);
      return failed(`${o.name}: cannot read the config file ${fileName}: ${why}`);
    }
  }
  try {
    return { config: o.load({ file, ...(fileName !== undefined && { fileName }), env }) };
  } catch (e) {
    // A ConfigurationError names keys, never secrets; anything else is redacted all the same.
    return failed(`${o.name}: ${(e as Error).message}`);
  }
}

/**
 * The process's PostgreSQL pool from its `database` section. A lost connection (idle or in use: a
 * terminated backend, a restarted server) never ends the process: it is logged once per outage
 * (`ConnectionFaultLog`), the statement in flight fails with a classified error and takes its own
 * path (retried, recovered later, released), and the pool opens new connections when the server
 * is back. No wait is unbounded: TCP keepalive, `connectTimeoutMs` and `statementTimeoutMs`.
 */
export function openServiceDatabase(
  config: z.output<typeof databaseConfigSchema>,
  applicationName: string,
  logger: Logger,
): CcatDatabase {
  const faults = new ConnectionFaultLog(logger, 'PostgreSQL');
  return createDatabase({
    connectionString: config.url,
    schema: config.schema,
    max: config.poolSize,
    preparedStatements: config.preparedStatements,
    statementTimeoutMs: config.statementTimeoutMs,
    connectTimeoutMs: config.connectTimeoutMs,
    applicationName: applicationName.slice(0, 63),
    onError: (e) => faults.lost(e),
    onConnect: () => faults.restored(),
  });
}

/**
 * Brings the schema to the latest migration over a connection of its own without the statement
 * bound (a migration, or the wait for another process's migration lock, may take longer than any
 * statement of the service), then closes it. Throws what `migrateToLatest` throws.
 */
export async function migrateServiceDatabase(
  config: z.output<typeof databaseConfigSchema>,
  applicationName: string,
  logger: Logger,
): Promise<void> {
  const database = openServiceDatabase(
    { ...config, poolSize: 1, statementTimeoutMs: 0 },
    `${applicationName.slice(0, 52)} migrate`,
    logger,
  );
  try {
    await migrateToLatest(database.db, { schema: config.schema });
  } finally {
    await database.close();
  }
}
