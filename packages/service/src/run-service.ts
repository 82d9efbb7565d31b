// The one boot skeleton of a CCAT service process (ccat-worker, ccat-monitor, any other): read the
// configuration, build the logger, the pool and the Redis clients, wire the app, own the signals.
// It touches the process only through the `process` its main.ts passes in.
import { hostname } from 'node:os';
import { classifyError, ConfigurationError, redactSecrets } from '@ccat/errors';
import type { Logger } from 'pino';
import { closeRedis, ConnectionFaultLog, REDIS_COMMAND_TIMEOUT_MS, watchRedis } from './connection-faults.js';
import { migrateServiceDatabase, openServiceDatabase, type ServiceDatabase } from './database.js';
import { createServiceLogger } from './logger.js';
import { readServiceConfig, type ConfigLoader } from './read-config.js';
import { createRedisConnection, type RedisConfig, type RedisConnection } from './redis-connection.js';
import type { DatabaseConfig, LogConfig } from './schemas.js';

/**
 * The `msg` of the line a service logs (level fatal) when its last-resort `uncaughtException` /
 * `unhandledRejection` handler fires, just before it exits 1. Stable: fault tests grep for it to
 * prove no fault reached that handler.
 */
export const FATAL_UNHANDLED_MESSAGE = 'fatal: unhandled error; exiting';

/**
 * The last resort's report of an error nothing else handled: logs one fatal line (msg
 * {@link FATAL_UNHANDLED_MESSAGE}, the classified code, the stack) when a logger exists yet, and
 * returns the redacted line for stderr (`<service>: fatal: …: <kind>: <message> [<code>]`). Never throws.
 */
export function reportUnhandled(
  service: string,
  kind: 'uncaughtException' | 'unhandledRejection',
  thrown: unknown,
  logger: Logger | undefined,
): string {
  const err = classifyError(thrown);
  const stack = thrown instanceof Error ? thrown.stack : undefined;
  logger?.fatal({ kind, errorCode: err.code, err: err.message, stack }, FATAL_UNHANDLED_MESSAGE);
  return `${service}: ${FATAL_UNHANDLED_MESSAGE}: ${kind}: ${redactSecrets(err.message, 2000)} [${err.code}]`;
}

/** The sections `runService` reads of a service's configuration. */
export interface ServiceConfigBase {
  readonly database: DatabaseConfig;
  readonly redis: RedisConfig;
  readonly log: LogConfig;
}

/** What a service wires from its packages (`createWorker`, `createMonitorRunner`). */
export interface ServiceApp {
  /** Waits for its servers and starts the work; throws `ConfigurationError` for exit 2. */
  start(): Promise<void>;
  /** Graceful stop (first signal). */
  close(): Promise<void>;
  /** Second signal: abort the work now. Without it a second signal exits 130 at once. */
  forceClose?(): Promise<void>;
}

/** How long a graceful stop may take, in ms from the first signal. */
export interface StopBounds {
  /** Past this the process exits 1 (`shutdown took too long`): the last resort. */
  readonly limitMs: number;
  /** The app's `close()` is waited for until then; a step still waiting is abandoned with a warning. */
  readonly appMs: number;
  /** Closing the connections ends by then; past it they are dropped with a warning. */
  readonly connectionsMs: number;
  /** The longest any closing of the connections may take (also before the app exists). */
  readonly closeTimeoutMs: number;
}

/** What `create` gets: the configuration, the process's id and logger, and its connections. */
export interface ServiceContext<C, D> {
  readonly config: C;
  /** `config`'s id, or `<host>-<pid>`. */
  readonly id: string;
  readonly pid: number;
  readonly logger: Logger;
  /** The pool `ServiceDefinition.database` opened, closed by the shutdown. */
  readonly database: D;
  /**
   * A Redis client of its own, closed by the shutdown: `'redis'` for ordinary commands (each bounded
   * by REDIS_COMMAND_TIMEOUT_MS), any other role a BullMQ connection (`maxRetriesPerRequest: null`,
   * no command bound: its blocking commands wait on purpose). With `commandTimeoutMs`, an ordinary
   * client whose commands are bounded by that instead (a heartbeat connection: its waits are bounded
   * shorter by the caller, and an answer later than those still counts). Losses are logged once per
   * outage.
   */
  redis(role: string, options?: { readonly commandTimeoutMs?: number }): RedisConnection;
}

/** One service program: its name, configuration, stop bounds and the app it wires. */
export interface ServiceDefinition<C extends ServiceConfigBase, D extends { close(): Promise<void> }> {
  /** The program's name: in messages, the log's `service` and connection names (`ccat-worker`). */
  readonly name: string;
  readonly usage: string;
  readonly load: ConfigLoader<C>;
  /** Secret variables that may come from `NAME_FILE`. */
  readonly secretFiles?: readonly string[];
  /** The log binding that names this process (`workerId`), and its configured value. */
  readonly idField: string;
  readonly id: (config: C) => string | undefined;
  /** What the first signal does, for its log line (`finishing the current pass`). */
  readonly stopping: string;
  readonly bounds: (config: C) => StopBounds;
  /** How the pool is opened and migrated: @ccat/db's `createDatabase` and `migrateWhenReachable`. */
  readonly database: ServiceDatabase<D>;
  readonly create: (context: ServiceContext<C, D>) => ServiceApp;
}

/**
 * Resolves true when `p` settles (fulfils or rejects) within `ms` milliseconds, false when the timer
 * fires first; never rejects, and never cancels `p`. Used for every bounded wait of a shutdown.
 */
export function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), Math.max(0, ms));
    const done = () => {
      clearTimeout(t);
      resolve(true);
    };
    p.then(done, done);
  });
}

/**
 * Runs a service process to its end. Configuration errors print and set exit code 2 (`--help`: 0).
 * Then the logger, the pool (`def.database.open`) and the Redis clients are opened, `create` wires
 * the app, migrations run (`def.database.migrate`) when `database.migrate`, and the app starts; a
 * start that throws exits 2 for a `ConfigurationError` (a port in use, a refused database), else 1.
 * SIGTERM, SIGINT and SIGHUP (installed before the start, so a process waiting for its database
 * stops too) close the app and then the connections within `bounds` and exit 0; a second signal
 * forces (`forceClose`, exit 130). An error nothing else
 * handled logs {@link FATAL_UNHANDLED_MESSAGE} and exits 1.
 */
export async function runService<C extends ServiceConfigBase, D extends { close(): Promise<void> }>(
  proc: NodeJS.Process,
  def: ServiceDefinition<C, D>,
): Promise<void> {
  /** The logger once configuration is read; before that, the last resort writes to stderr only. */
  const fatal: { logger?: Logger } = {};
  const onUnhandled = (kind: 'uncaughtException' | 'unhandledRejection') => (thrown: unknown) => {
    proc.stderr.write(`${reportUnhandled(def.name, kind, thrown, fatal.logger)}\n`);
    proc.exit(1);
  };
  proc.on('uncaughtException', onUnhandled('uncaughtException'));
  proc.on('unhandledRejection', onUnhandled('unhandledRejection'));
  const loaded = await readServiceConfig({
    name: def.name,
    usage: def.usage,
    argv: proc.argv.slice(2),
    env: proc.env,
    load: def.load,
    ...(def.secretFiles !== undefined && { secretFiles: def.secretFiles }),
  });
  if ('exitCode' in loaded) {
    if (loaded.stdout !== undefined) proc.stdout.write(`${loaded.stdout}\n`);
    if (loaded.stderr !== undefined) proc.stderr.write(`${loaded.stderr}\n`);
    proc.exitCode = loaded.exitCode;
    return;
  }
  const { config } = loaded;
  const id = def.id(config) ?? `${hostname()}-${proc.pid}`;
  const log = createServiceLogger(
    config.log,
    { service: def.name, [def.idField]: id, pid: proc.pid },
    proc.stdout.isTTY,
  );
  fatal.logger = log;
  if (loaded.ignored !== undefined) {
    // Names only: a value could be a secret. One line, whatever the count (DESIGN §8).
    log.warn(
      { variables: loaded.ignored.foreign, kubernetesServiceLinks: loaded.ignored.serviceLinks },
      `environment variables that are not ${def.name} configuration: ignored`,
    );
  }
  const bounds = def.bounds(config);
  const closers: (() => Promise<unknown>)[] = [];
  /** Drop a connection at once (no reply awaited): for servers that stopped answering. */
  const droppers: (() => void)[] = [];
  const closeConnections = () => Promise.allSettled(closers.map((close) => close()));
  /** Closes the connections within `ms` (at most closeTimeoutMs); past it they are dropped. */
  const closeConnectionsWithin = async (ms: number) => {
    if (!(await settlesWithin(closeConnections(), Math.min(ms, bounds.closeTimeoutMs)))) {
      log.warn('connections did not close in time (a server not answering): dropped');
      for (const drop of droppers) drop();
    }
  };
  let app: ServiceApp | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    const running = app;
    if (running === undefined) {
      // Before the app exists there is nothing to drain.
      void closeConnectionsWithin(bounds.closeTimeoutMs).finally(() => proc.exit(signals === 1 ? 0 : 130));
      return;
    }
    if (signals > 1) {
      if (running.forceClose === undefined) {
        log.warn({ signal }, 'second signal: exiting now');
        proc.exit(130);
      }
      log.warn({ signal }, 'second signal: forcing shutdown');
      void running
        .forceClose()
        .finally(() => void closeConnectionsWithin(1000).finally(() => proc.exit(130)));
      return;
    }
    const force = running.forceClose === undefined ? 'exit at once' : 'force';
    log.info({ signal }, `signal received: ${def.stopping} (send it again to ${force})`);
    const start = performance.now(); // monotonic: a clock step does not move the bounds
    setTimeout(() => {
      log.error('shutdown took too long; exiting');
      proc.exit(1);
    }, bounds.limitMs).unref();
    void (async () => {
      const closing = running
        .close()
        .catch((e: unknown) => log.error({ err: classifyError(e).message }, 'shutdown had failures'));
      if (!(await settlesWithin(closing, start + bounds.appMs - performance.now())))
        log.warn('shutdown steps still waiting at their bound: abandoned');
      await closeConnectionsWithin(start + bounds.connectionsMs - performance.now());
      proc.exit(0);
    })();
  };
  proc.on('SIGTERM', onSignal);
  proc.on('SIGINT', onSignal);
  proc.on('SIGHUP', onSignal);
  const applicationName = `${def.name} ${id}`;
  try {
    const database = openServiceDatabase(def.database, config.database, applicationName, log);
    closers.push(() => database.close());
    const redisFaults = new ConnectionFaultLog(log, 'Redis');
    const redis = (role: string, options?: { readonly commandTimeoutMs?: number }) => {
      const ordinary = role === 'redis' || options?.commandTimeoutMs !== undefined;
      const client = createRedisConnection(config.redis, {
        maxRetriesPerRequest: ordinary ? 1 : null,
        // A hung Redis fails an ordinary command after this long instead of holding it forever.
        ...(ordinary && { commandTimeout: options?.commandTimeoutMs ?? REDIS_COMMAND_TIMEOUT_MS }),
        connectionName: ordinary ? `${def.name}:${id}` : `${def.name}-${role}:${id}`,
      });
      watchRedis(client, redisFaults, role);
      closers.push(() => closeRedis(client));
      droppers.push(() => client.disconnect());
      return client;
    };
    app = def.create({ config, id, pid: proc.pid, logger: log, database, redis });
    if (config.database.migrate)
      await migrateServiceDatabase(def.database, config.database, applicationName, log);
    await app.start();
  } catch (e) {
    const err = classifyError(e);
    log.fatal({ err: err.message, errorCode: err.code }, `${def.name} could not start`);
    proc.stderr.write(`${def.name}: could not start: ${redactSecrets(err.message, 2000)} [${err.code}]\n`);
    await app?.close().catch(() => undefined);
    await closeConnections();
    proc.exit(err instanceof ConfigurationError || err.name === 'ConfigurationError' ? 2 : 1);
  }
}
