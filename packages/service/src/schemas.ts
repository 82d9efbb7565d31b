// The configuration sections every CCAT service shares (DESIGN §8): PostgreSQL, Redis, the key
// prefix and logging, the URL rules checked at start, and how a URL is shown.
import { redactSecrets } from '@ccat/errors';
import { z } from 'zod';

/**
 * The longest delay a Node.js timer takes (2^31 − 1 ms, about 24.8 days): a longer one fires at once
 * (Node.js docs, `setTimeout`). The upper bound of every millisecond option a timer is armed with.
 */
export const MAX_TIMER_MS = 2_147_483_647;

/**
 * A duration option in milliseconds: a whole number from `min` to `max` (by default the longest
 * timer, MAX_TIMER_MS), `dflt` when the option is absent.
 */
export function durationMsSchema(dflt: number, min = 1, max = MAX_TIMER_MS) {
  return z.number().int().min(min).max(max).default(dflt);
}

/** A duration option in milliseconds from `min` to `max` with no default: absent stays absent. */
export function optionalDurationMsSchema(min = 1, max = MAX_TIMER_MS) {
  return z.number().int().min(min).max(max).optional();
}

/**
 * The heartbeat bounds' rule (DESIGN §5), the same for workers and monitors, as issues of a zod
 * refinement on the config section `keys.section` (`heartbeat`, `monitor`): liveness at least two
 * beats of `keys.interval` (else a live process is taken for dead), every progress bound (the
 * section's and each operation type's) at least liveness, the removed `keys.removed` (the seed's one
 * heartbeat timeout) refused at both levels, saying what replaced it.
 */
export function checkHeartbeatBounds(
  ctx: z.RefinementCtx,
  section: { readonly livenessTimeoutMs: number; readonly operationTypes: object },
  keys: Readonly<Record<'section' | 'interval' | 'removed', string>>,
): void {
  const why = `removed: liveness and progress have separate bounds now. The old value was the seed's heartbeat_timeout: set it as progressTimeoutMs (at the same level); process liveness is ${keys.section}.livenessTimeoutMs (default 12 s, the same on workers and monitors). See docs/runbook.md, "Liveness and progress"`;
  const at = (level: unknown, key: string) => (level as Record<string, unknown> | undefined)?.[key];
  const issue = (path: string[], message: string, input: unknown) =>
    ctx.addIssue({ code: 'custom', path: [keys.section, ...path], message, input });
  const liveness = section.livenessTimeoutMs;
  const interval = at(section, keys.interval) as number;
  if (liveness < 2 * interval)
    issue(
      ['livenessTimeoutMs'],
      `must be at least 2 × ${keys.section}.${keys.interval} (${2 * interval})`,
      liveness,
    );
  const types = Object.entries(section.operationTypes).map(
    ([type, t]) => [t, ['operationTypes', type]] as const,
  );
  for (const [level, path] of [[section, []] as const, ...types]) {
    const removed = at(level, keys.removed);
    if (removed !== undefined) issue([...path, keys.removed], why, removed);
    const progress = at(level, 'progressTimeoutMs');
    if (typeof progress === 'number' && progress < liveness)
      issue(
        [...path, 'progressTimeoutMs'],
        `must be at least ${keys.section}.livenessTimeoutMs (${liveness})`,
        progress,
      );
  }
}

/**
 * The well-known variables every service reads (DESIGN §8), by the dotted config path they set; a
 * service adds its own.
 */
export const SERVICE_ENV_ALIASES = {
  DATABASE_URL: 'database.url',
  DATABASE_SCHEMA: 'database.schema',
  REDIS_URL: 'redis.url',
  REDIS_PASSWORD: 'redis.password',
  REDIS_SENTINEL_PASSWORD: 'redis.sentinelPassword',
} as const;

/**
 * Those of SERVICE_ENV_ALIASES that hold secrets (the URLs carry the database and Redis passwords;
 * the Redis passwords for Sentinel or Cluster have their own): each may come from a file named by
 * `NAME_FILE` (Docker and Kubernetes secrets mounted as files).
 */
export const SERVICE_SECRET_FILES = [
  'DATABASE_URL',
  'REDIS_URL',
  'REDIS_PASSWORD',
  'REDIS_SENTINEL_PASSWORD',
] as const satisfies readonly (keyof typeof SERVICE_ENV_ALIASES)[];

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

/**
 * A connection URL as messages and logs show it: its password and password-like query parameters
 * replaced by `[REDACTED]` (@ccat/errors' one redactor and censor), user, host, port and path kept.
 * A text that does not parse as a URL comes back as `(unparseable URL)`: where a secret would sit in
 * it cannot be told, so none of it is shown.
 */
export function redactUrl(url: string): string {
  try {
    new URL(url);
  } catch {
    return '(unparseable URL)';
  }
  return redactSecrets(url);
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

/** The `database` section as read: the connection, the pool's bounds, and the schema the tables live in. */
export interface DatabaseConfig {
  readonly url: string;
  readonly schema: string;
  readonly poolSize: number;
  readonly migrate: boolean;
  readonly preparedStatements: boolean;
  readonly statementTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

/**
 * The `database` section (PostgreSQL: the operation tables, their events and the notification
 * outbox) with `schema` as its `schema` field: the owner of the tables checks their schema's name
 * (@ccat/db's `schemaNameSchema`); a plain `z.string().default('public')` accepts any.
 */
export function databaseConfigSchema(schema: z.ZodDefault<z.ZodString>) {
  return z
    .strictObject({
      url: connectionUrl(POSTGRES_URL_RULE)
        .default('postgres://postgres@127.0.0.1:5432/postgres')
        .describe(
          'PostgreSQL connection URL, `postgres://user:password@host:port/database`. Checked at start: scheme postgres: or postgresql:, a host (or `?host=` naming a socket directory), a port from 1 to 65535.',
        ),
      schema,
      poolSize: z
        .number()
        .int()
        .min(1)
        .max(100)
        .default(10)
        .describe("Connections in this process's PostgreSQL pool."),
      migrate: z.boolean().default(false).describe('Run migrations at start.'),
      preparedStatements: z
        .boolean()
        .default(false)
        .describe(
          'Prepare each statement once per connection (server-side named statements): the hot transitions skip parsing and planning (about +30% on the claim/complete path). Off by default so the apps work behind a transaction-mode pooler (PgBouncer before 1.21, or without max_prepared_statements); turn on when connected to PostgreSQL directly. Should the server refuse one, the process turns them off, logs one WARNING, and the statement is retried.',
        ),
      statementTimeoutMs: durationMsSchema(30_000, 0, 3_600_000).describe(
        "Bound on each statement's round trip, in ms, measured by the client (0: none). A statement with no answer by then (a frozen server, a connection gone silent) fails as a network timeout and its connection is discarded; works behind a transaction-mode pooler. Migrations at start run without it.",
      ),
      connectTimeoutMs: durationMsSchema(10_000, 0, 600_000).describe(
        'Bound on opening a connection and on waiting for a free one in the pool, in ms (0: none).',
      ),
    })
    .prefault({});
}

/**
 * Prefix of every Redis key (heartbeats, health keys, BullMQ queues); workers and monitors of one
 * deployment share it. Every key also carries one Redis Cluster hash tag: the prefix's own `{tag}`
 * when it has one, else the prefix without trailing colons (`ccat:` → keys under `ccat:{ccat}:`).
 */
export const keyPrefixSchema = z
  .string()
  .min(1)
  .max(100)
  .regex(
    /^(?:[^{}\s]+|[^{}\s]*\{[^{}\s]+\}[^{}\s]*)$/,
    'a prefix without whitespace, braces only as one Redis Cluster {hash tag}, e.g. ccat: or ccat:{ccat}:',
  )
  .default('ccat:');

/**
 * The `http` section: where the service's HTTP server (`startHealthServer`: /metrics, /healthz,
 * /readyz) listens. `defaultPort` is the service's own (ccat-worker 9464, ccat-monitor 9465), so
 * services on one host do not collide.
 */
export function httpConfigSchema(defaultPort: number) {
  return z
    .strictObject({
      host: z
        .string()
        .default('127.0.0.1')
        .describe(
          'Address the HTTP server listens on. Loopback by default: in a container set 0.0.0.0, or probes and scrapes from outside fail.',
        ),
      port: z
        .number()
        .int()
        .min(0)
        .max(65535)
        .nullable()
        .default(defaultPort)
        .describe('/metrics, /healthz and /readyz; 0 picks a free port, null turns the server off.'),
    })
    .prefault({})
    .describe('The HTTP server for /metrics (Prometheus), /healthz and /readyz.');
}

/** Logging (pino JSON lines). */
export const logConfigSchema = z
  .strictObject({
    level: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info')
      .describe('Lowest level logged.'),
    pretty: z
      .union([z.boolean(), z.literal('auto')])
      .default('auto')
      .describe("Human-readable lines; 'auto' = when stdout is a terminal."),
  })
  .prefault({});

export type LogConfig = z.output<typeof logConfigSchema>;
