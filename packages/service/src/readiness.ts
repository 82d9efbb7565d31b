// Readiness that means "able to do the work" (PostgreSQL reachable and migrated to what this code
// needs, Redis connected and answering), and waiting at start for servers that are not there yet.
import { classifyError, ConfigurationError, type CCATDataOperationError } from '@ccat/errors';
import type { RedisConnection } from './redis-connection.js';
import type { Logger } from 'pino';

/** What a schema that lacks migrations needs; in the log and in /readyz. */
export const MIGRATE_HINT = 'run: ccat-recovery migrate';

const timeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(resolve, reject).finally(() => clearTimeout(t));
  });

/**
 * Where the database's schema stands against this code, as @ccat/db's `migrationStatus` says it
 * (`() => migrationStatus(db, { schema })`): every migration applied, or which are pending. Rejects
 * when the server cannot be asked.
 */
export type MigrationCheck = () => Promise<{
  readonly upToDate: boolean;
  readonly pending: readonly string[];
}>;

/** The database as readiness sees it. */
export type DatabaseState =
  | { readonly state: 'ok' }
  | { readonly state: 'not_migrated'; readonly pending: readonly string[] }
  | { readonly state: 'unreachable'; readonly error: CCATDataOperationError }
  | { readonly state: 'refused'; readonly error: CCATDataOperationError };

/**
 * Codes of database errors no waiting cures: wrong credentials or database name. (A host name that
 * does not resolve is waited for: in a container the database's name may resolve only once it runs.)
 */
const REFUSALS = new Set(['DB_AUTH_FAILED', 'DB_CONFIGURATION']);

/**
 * Whether this code can work on the database: `migrations` answers within `timeoutMs` and says
 * every migration it knows is applied. `refused`: the server answered but no retry helps (wrong
 * password or database name). Never throws.
 */
export async function databaseState(migrations: MigrationCheck, timeoutMs = 3_000): Promise<DatabaseState> {
  try {
    const status = await timeout(migrations(), timeoutMs, 'PostgreSQL');
    return status.upToDate ? { state: 'ok' } : { state: 'not_migrated', pending: status.pending };
  } catch (thrown) {
    const error = classifyError(thrown);
    return REFUSALS.has(error.code) ? { state: 'refused', error } : { state: 'unreachable', error };
  }
}

/**
 * A Redis connection as readiness sees it: `ready` when it is connected and answers PING within
 * `timeoutMs` (default 3 s); `no answer` when connected but silent (a hung or paused server, whose
 * socket stays open); otherwise ioredis' status (`connecting`, `reconnecting`, `end`…). Never throws.
 */
export async function redisState(client: RedisConnection, timeoutMs = 3_000): Promise<string> {
  if (client.status !== 'ready') return client.status;
  try {
    await timeout(client.ping(), timeoutMs, 'Redis');
    return 'ready';
  } catch {
    return client.status === 'ready' ? 'no answer' : client.status;
  }
}

/** /readyz of a service: what readiness checks. */
export interface ReadinessSources {
  /** The database's migration status (reachable and migrated). */
  readonly migrations: MigrationCheck;
  /** Every Redis connection the work needs, by name. */
  readonly redis: Readonly<Record<string, RedisConnection>>;
  /** Whether the service's own work has started (false while it waits at start, or once closing). */
  readonly working: () => boolean;
  readonly timeoutMs?: number;
}

/**
 * Ready means able to do the work: the work started, PostgreSQL reachable and migrated to this
 * code's latest migration, every Redis connection ready and answering PING (`redisState`); the
 * checks run at once, each bounded by `timeoutMs` (default 3 s). The details say what is missing; an
 * unmigrated schema adds `action: "run: ccat-recovery migrate"`.
 */
export async function readiness(
  s: ReadinessSources,
): Promise<{ ok: boolean; details: Record<string, unknown> }> {
  const [db, redisStates] = await Promise.all([
    databaseState(s.migrations, s.timeoutMs),
    Promise.all(
      Object.entries(s.redis).map(
        async ([name, client]) => [name, await redisState(client, s.timeoutMs)] as const,
      ),
    ),
  ]);
  const redis = Object.fromEntries(redisStates);
  const redisOk = Object.values(redis).every((state) => state === 'ready');
  const details: Record<string, unknown> = {
    working: s.working(),
    postgres: db.state === 'ok' ? 'ok' : db.state === 'not_migrated' ? 'not migrated' : db.state,
    redis,
  };
  if (db.state === 'not_migrated') {
    details['pendingMigrations'] = db.pending;
    details['action'] = MIGRATE_HINT;
  }
  if (db.state === 'unreachable' || db.state === 'refused') details['postgresError'] = db.error.code;
  return { ok: s.working() && db.state === 'ok' && redisOk, details };
}

/** Sleeps `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Throws `ConfigurationError` (code `REDIS_DATABASE`, exit 2) when the connection is not on the
 * database its URL names: ioredis reports a refused SELECT (`ERR DB index is out of range`, a
 * number past the server's `databases`) as a connection error and then works on database 0, where
 * the keys of another deployment may be. Read with CLIENT INFO (Redis 6.2+); a server without it
 * is not checked, nor a Cluster (database 0 only).
 */
async function assertSelectedDatabase(client: RedisConnection): Promise<void> {
  // A Cluster has database 0 only.
  const wanted = 'db' in client.options ? (client.options.db ?? 0) : 0;
  if (wanted === 0) return;
  let info: string;
  try {
    info = String(await timeout(client.client('INFO'), 3_000, 'Redis'));
  } catch {
    return;
  }
  const db = /(?:^|\s)db=(\d+)/.exec(info)?.[1];
  if (db !== undefined && Number(db) !== wanted)
    throw new ConfigurationError(
      `redis.url names database ${wanted}, which this Redis server refused (it has fewer databases): the connection is on database ${db}`,
      { code: 'REDIS_DATABASE', context: { wanted, selected: Number(db) } },
    );
}

/**
 * Waits until every Redis connection is ready and answers PING (`redisState`), polling every
 * `intervalMs` (default 2 s); logs once while it waits. A Redis that is down or restarting at
 * start is waited for like an unreachable database, not a reason to exit. Resolves true when
 * ready, false when `signal` aborts first. Throws `ConfigurationError` (`REDIS_DATABASE`) when a
 * connection is not on the database its URL names (the server refused the SELECT).
 */
export async function waitForRedis(o: {
  readonly redis: Readonly<Record<string, RedisConnection>>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly intervalMs?: number;
}): Promise<boolean> {
  let logged = false;
  while (!o.signal.aborted) {
    const states = Object.fromEntries(
      await Promise.all(
        Object.entries(o.redis).map(async ([name, client]) => [name, await redisState(client)] as const),
      ),
    );
    if (Object.values(states).every((state) => state === 'ready')) {
      for (const client of Object.values(o.redis)) await assertSelectedDatabase(client);
      if (logged) o.logger.info('Redis ready: starting the work');
      return true;
    }
    if (!logged) {
      logged = true;
      o.logger.warn({ redis: states }, 'Redis is not reachable; waiting for it before starting the work');
    }
    await pause(o.intervalMs ?? 2_000, o.signal);
  }
  return false;
}

/**
 * Waits until the database can take the work: reachable and migrated. Logs once per state it waits
 * in (unreachable; not migrated, with `run: ccat-recovery migrate`), polls every `intervalMs`.
 * Resolves true when ready, false when `signal` aborts first. Throws `ConfigurationError` when the
 * server refuses (credentials or database name wrong), or when the connection's search_path does
 * not lead to `schema` (`assertSearchPath`, `DB_SEARCH_PATH`): waiting would not help; exit 2.
 */
export async function waitForDatabase(o: {
  readonly migrations: MigrationCheck;
  /** The schema `migrations` looks at, for the log lines. */
  readonly schema: string;
  /**
   * Checked once the database is ready: throws a `ConfigurationError` when the connection's
   * unqualified names do not resolve to `schema` (@ccat/db's `assertSearchPath`: a pooler that drops
   * the startup parameter `options`). Omitted: not checked.
   */
  readonly searchPath?: () => Promise<void>;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly intervalMs?: number;
}): Promise<boolean> {
  let logged: DatabaseState['state'] | undefined;
  while (!o.signal.aborted) {
    const s = await databaseState(o.migrations);
    if (s.state === 'ok') {
      // Once per start: unqualified names must resolve to the schema (a pooler may drop `options`).
      const wrong = await (o.searchPath?.() ?? Promise.resolve()).then(
        () => undefined,
        (e: unknown) => classifyError(e),
      );
      if (wrong === undefined) {
        if (logged !== undefined) o.logger.info({ schema: o.schema }, 'database ready: starting the work');
        return true;
      }
      if (wrong instanceof ConfigurationError) throw wrong;
      // Lost just after the state check: polled again.
      await pause(o.intervalMs ?? 2_000, o.signal);
      continue;
    }
    if (s.state === 'refused') {
      throw new ConfigurationError(
        `PostgreSQL refused this configuration: ${s.error.message} [${s.error.code}]`,
        {
          code: 'DATABASE_REFUSED',
          context: { errorCode: s.error.code },
          cause: s.error,
        },
      );
    }
    if (logged !== s.state) {
      logged = s.state;
      if (s.state === 'not_migrated')
        o.logger.error(
          { schema: o.schema, pendingMigrations: s.pending, action: MIGRATE_HINT },
          `database schema "${o.schema}" is not migrated to this version: ${MIGRATE_HINT}; waiting`,
        );
      else
        o.logger.warn(
          { errorCode: s.error.code, err: s.error.message },
          'PostgreSQL is not reachable; waiting for it before starting the work',
        );
    }
    await pause(o.intervalMs ?? 2_000, o.signal);
  }
  return false;
}
