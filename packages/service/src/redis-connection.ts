// Redis as every CCAT service reaches it (DESIGN §11): one server by URL, a primary found through
// Redis Sentinel, or a Redis Cluster. The configuration section and the one factory the apps, the
// CLI and the BullMQ connections use, on ioredis' own Sentinel and Cluster support.
import { ConfigurationError, fullJitterDelayMs } from '@ccat/errors';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { z } from 'zod';
import { redactUrl, REDIS_URL_RULE, urlProblems } from './schemas.js';

/** The default when no Redis is configured at all. */
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** `host:port`, the host a name, an IPv4 address or a bracketed IPv6 address. */
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/;

/** What is wrong with a `host:port` (empty when nothing is); never repeats the value. */
function hostPortProblems(value: string): string[] {
  const m = HOST_PORT.exec(value);
  if (m === null) return ['expected host:port, e.g. 10.0.0.5:26379'];
  const port = Number(m[2]);
  return port >= 1 && port <= 65535 ? [] : ['port out of range: must be from 1 to 65535'];
}

/** A string checked by `problems`, each problem its own issue. */
function checked(problems: (value: string) => string[]) {
  return z.string().superRefine((value, ctx) => {
    for (const message of problems(value)) ctx.addIssue({ code: 'custom', message, input: undefined });
  });
}

/** A cluster node: `host:port` or a `redis://`/`rediss://` URL. */
function nodeProblems(value: string): string[] {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(value)
    ? urlProblems(value, REDIS_URL_RULE)
    : hostPortProblems(value);
}

const redisFields = z.strictObject({
  url: checked((v) => urlProblems(v, REDIS_URL_RULE))
    .optional()
    .describe(
      'Redis connection URL, `redis://[:password@]host:port[/db]` (default `redis://127.0.0.1:6379` when neither `sentinels` nor `cluster` is set). Checked at start: scheme redis: or rediss: (TLS), a host, a port from 1 to 65535, a database number as the path if any. Exactly one of url, sentinels and cluster.',
    ),
  sentinels: z
    .array(checked(hostPortProblems))
    .min(1)
    .max(32)
    .optional()
    .describe(
      'Redis Sentinel: the sentinels as `host:port` (e.g. `["10.0.0.5:26379","10.0.0.6:26379","10.0.0.7:26379"]`); the primary is asked of them and found again after a failover. Needs `sentinelName`. Exactly one of url, sentinels and cluster.',
    ),
  sentinelName: z
    .string()
    .min(1)
    .max(200)
    .regex(/^\S+$/, 'a master name without whitespace')
    .optional()
    .describe("The master name the sentinels monitor (sentinel.conf's `sentinel monitor <name> …`)."),
  sentinelPassword: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Password of the sentinels themselves (their `requirepass`), if any; secret: set it with REDIS_SENTINEL_PASSWORD or REDIS_SENTINEL_PASSWORD_FILE. The data nodes' password is `password`.",
    ),
  cluster: z
    .array(checked(nodeProblems))
    .min(1)
    .max(64)
    .optional()
    .describe(
      'Redis Cluster: some of its nodes as `host:port` or `redis://host:port` (one is enough; more are tried in turn); the rest are discovered. Every key of the deployment carries one hash tag (see keyPrefix), so every script runs on one node. Exactly one of url, sentinels and cluster.',
    ),
  username: z
    .string()
    .min(1)
    .optional()
    .describe(
      'ACL user of the data nodes when `sentinels` or `cluster` is used (with `url`, write it in the URL).',
    ),
  password: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Password of the data nodes (primary, replicas, cluster nodes) when `sentinels` or `cluster` is used (with `url`, write it in the URL); secret: set it with REDIS_PASSWORD or REDIS_PASSWORD_FILE.',
    ),
});

/** The configured Redis, after the checks: exactly one of `url`, `sentinels`, `cluster` is set. */
export type RedisConfig = z.output<typeof redisFields>;

/**
 * Redis: heartbeats, service health keys, the BullMQ queues and the monitors' lease. One of three
 * forms: `url` (one server; the default `redis://127.0.0.1:6379` when nothing is set), `sentinels`
 * with `sentinelName` (Sentinel), or `cluster` (Cluster nodes). Two forms at once, a `sentinelName`
 * or `sentinelPassword` without `sentinels`, or `username`/`password` beside a `url` are refused
 * with the path named.
 */
export const redisConfigSchema = redisFields
  .superRefine((v, ctx) => {
    const given = (['url', 'sentinels', 'cluster'] as const).filter((k) => v[k] !== undefined);
    if (given.length > 1)
      ctx.addIssue({
        code: 'custom',
        path: [given[1]!],
        message: `exactly one of url, sentinels and cluster may be set, not ${given.join(' and ')} (REDIS_URL sets url)`,
        input: undefined,
      });
    if (v.sentinels !== undefined && v.sentinelName === undefined)
      ctx.addIssue({
        code: 'custom',
        path: ['sentinelName'],
        message: 'required with sentinels: the master name the sentinels monitor',
        input: undefined,
      });
    for (const k of ['sentinelName', 'sentinelPassword'] as const)
      if (v[k] !== undefined && v.sentinels === undefined)
        ctx.addIssue({ code: 'custom', path: [k], message: 'only with sentinels', input: undefined });
    for (const k of ['username', 'password'] as const)
      if (v[k] !== undefined && v.url !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: 'only with sentinels or cluster: with url, write it in the URL',
          input: undefined,
        });
  })
  .transform((v): RedisConfig =>
    v.url === undefined && v.sentinels === undefined && v.cluster === undefined
      ? { ...v, url: DEFAULT_REDIS_URL }
      : v,
  )
  .prefault({});

/** A connection the factory makes: one server (URL or Sentinel) or a Cluster. */
export type RedisConnection = Redis | Cluster;

/** Per-connection client options: what differs between the ordinary, blocking and BullMQ clients. */
export type RedisClientOptions = Pick<
  RedisOptions,
  | 'maxRetriesPerRequest'
  | 'commandTimeout'
  | 'connectionName'
  | 'lazyConnect'
  | 'connectTimeout'
  | 'retryStrategy'
  | 'enableOfflineQueue'
>;

/** `host:port` (IPv6 in brackets) as ioredis wants it. */
function hostAndPort(value: string): { host: string; port: number } {
  const m = HOST_PORT.exec(value);
  if (m === null) throw new ConfigurationError('redis: expected host:port', { code: 'REDIS_CONFIGURATION' });
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

/** A cluster node given as a URL (`redis://…`), not as `host:port`. */
const NODE_URL = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//;

/** A cluster node as ioredis' Cluster takes it (a URL keeps its own credentials and TLS). */
function clusterNode(value: string): string | { host: string; port: number } {
  return NODE_URL.test(value) ? value : hostAndPort(value);
}

/**
 * Where a connection goes, for logs and messages: hosts, ports and a URL's user, never a password
 * (URLs shown through `redactUrl`).
 */
export function describeRedis(config: RedisConfig): string {
  if (config.sentinels !== undefined)
    return `Sentinel master ${config.sentinelName ?? '?'} via ${config.sentinels.join(', ')}`;
  if (config.cluster !== undefined)
    return `Cluster ${config.cluster.map((n) => (NODE_URL.test(n) ? redactUrl(n) : n)).join(', ')}`;
  return redactUrl(config.url ?? DEFAULT_REDIS_URL);
}

/**
 * Makes one ioredis connection for `config`, with `options` for this use: a `Redis` for a URL, a
 * `Redis` in Sentinel mode (it asks the sentinels for the primary and again after a failover or a
 * READONLY reply from a demoted one), or a `Cluster` (per-node options under `redisOptions`). The
 * caller owns and closes it. BullMQ's workers need `maxRetriesPerRequest: null` (BullMQ docs,
 * "Going to production"). A `retryStrategy` also governs retries when no sentinel answers, so a
 * caller that gives up (`() => null`) is not kept waiting. Throws ConfigurationError for a URL
 * ioredis cannot read, without the URL.
 */
export function createRedisConnection(
  config: RedisConfig,
  options: RedisClientOptions = {},
): RedisConnection {
  const auth = {
    ...(config.username !== undefined && { username: config.username }),
    ...(config.password !== undefined && { password: config.password }),
  };
  if (config.cluster !== undefined) {
    const clusterOptions: ClusterOptions = {
      redisOptions: { ...options, ...auth },
      ...(options.lazyConnect !== undefined && { lazyConnect: options.lazyConnect }),
      ...(options.enableOfflineQueue !== undefined && { enableOfflineQueue: options.enableOfflineQueue }),
      ...(options.retryStrategy !== undefined && { clusterRetryStrategy: options.retryStrategy }),
    };
    return new Cluster(config.cluster.map(clusterNode), clusterOptions);
  }
  if (config.sentinels !== undefined) {
    return new Redis({
      ...options,
      ...auth,
      sentinels: config.sentinels.map(hostAndPort),
      name: config.sentinelName ?? '',
      ...(config.sentinelPassword !== undefined && { sentinelPassword: config.sentinelPassword }),
      // When no sentinel answers: as the caller's retryStrategy says (the CLI's gives up at once),
      // else again after the one backoff (full jitter, up to 2 s), like a lost connection to one server.
      sentinelRetryStrategy:
        options.retryStrategy ?? ((times: number) => fullJitterDelayMs(times, { baseMs: 200, maxMs: 2_000 })),
    });
  }
  try {
    return new Redis(config.url ?? DEFAULT_REDIS_URL, options);
  } catch {
    // ioredis throws on a malformed URL, with the URL (and its password) in the error: not shown.
    throw new ConfigurationError(
      `redis.url (REDIS_URL) is not a valid Redis URL: expected ${REDIS_URL_RULE.form}`,
      { code: 'REDIS_CONFIGURATION' },
    );
  }
}
