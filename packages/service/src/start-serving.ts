// The start of every service before its own work: the health server first (so probes answer while it
// waits), then a reachable, migrated database, then Redis.
import { classifyError } from '@ccat/errors';
import { startHealthServer, type MetricsSource } from './health-server.js';
import type { HttpServer } from './http-listener.js';
import { readiness, waitForDatabase, waitForRedis, type ReadinessSources } from './readiness.js';
import type { Logger } from 'pino';

/** What `startServing` needs: what /healthz and /readyz say, and what it waits for. */
export interface ServingOptions extends Omit<ReadinessSources, 'timeoutMs'> {
  /** `config.http`; `port` null: no HTTP server. */
  readonly http: { readonly host: string; readonly port: number | null };
  readonly registry: MetricsSource;
  /** The details of /healthz, which is ok while the process answers (e.g. `{ workerId }`). */
  readonly healthDetails: () => Readonly<Record<string, unknown>>;
  /** The schema `migrations` looks at, and @ccat/db's `() => assertSearchPath(db, schema)`. */
  readonly schema: string;
  readonly searchPath: () => Promise<void>;
  readonly logger: Logger;
  /** Aborted by the app's close(): ends the waits (the server stays, for the caller to close). */
  readonly signal: AbortSignal;
  /** Called with the server (undefined: no port) before the waits: kept to close it; more may start. */
  readonly listening?: (http: HttpServer | undefined) => void | Promise<void>;
  /** How often the waits poll, in ms (default 2 s). */
  readonly intervalMs?: number;
}

/**
 * Starts a service up to its own work, in this order: the health server (/readyz from `readiness`,
 * server errors logged as warnings), `waitForDatabase` (reachable, migrated, search_path on
 * `schema`), then `waitForRedis` (every connection of `redis` ready). An unreachable database or
 * Redis never throws: it is logged once and waited for. Resolves true when the work can start,
 * false when `signal` aborts first (the caller then starts nothing). Throws `ConfigurationError`
 * (exit 2) when it cannot listen (`HTTP_LISTEN_FAILED`) or the database or Redis refuses the
 * configuration (`DATABASE_REFUSED`, `DB_SEARCH_PATH`, `REDIS_DATABASE`).
 */
export async function startServing(o: ServingOptions): Promise<boolean> {
  const http =
    o.http.port === null
      ? undefined
      : await startHealthServer(o.http.host, o.http.port, {
          registry: o.registry,
          healthz: () => ({ ok: true, details: o.healthDetails() }),
          readyz: () => readiness(o),
          onError: (e, where) =>
            o.logger.warn({ where, err: classifyError(e).message }, 'HTTP server connection error'),
        });
  await o.listening?.(http);
  return (await waitForDatabase(o)) && waitForRedis(o);
}
