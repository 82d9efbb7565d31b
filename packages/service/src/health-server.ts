// A service's health over HTTP: /metrics (Prometheus text), /healthz (alive) and /readyz (its
// connections work), the HTTP face of the health keys this package keeps in Redis.
import type { RequestListener } from 'node:http';
import { listenHttp, type HttpListenOptions, type HttpServer } from './http-listener.js';

/** What /metrics needs of a metrics registry (prom-client's Registry fits). */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

export interface HealthCheck {
  readonly ok: boolean;
  readonly details: Readonly<Record<string, unknown>>;
}

export interface HealthEndpoints {
  readonly registry: MetricsSource;
  readonly healthz: () => HealthCheck | Promise<HealthCheck>;
  readonly readyz?: () => HealthCheck | Promise<HealthCheck>;
  /** Server and client connection errors, reported only (`listenHttp`'s `onError`). */
  readonly onError?: HttpListenOptions['onError'];
}

/**
 * Serves /metrics, /healthz and /readyz on host:port (0: a free port) through `listenHttp` (name
 * `http`, code `HTTP_LISTEN_FAILED`: a `ConfigurationError`, exit 2, when it cannot listen; a
 * bounded close, safe twice). Server and client errors go to `onError` and never end the process;
 * a check that throws answers 500 for /healthz and 503 for /readyz.
 */
export function startHealthServer(
  host: string,
  port: number,
  endpoints: HealthEndpoints,
): Promise<HttpServer> {
  const handler: RequestListener = (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const check = async (f: () => HealthCheck | Promise<HealthCheck>, failStatus: number) => {
      let h: HealthCheck;
      try {
        h = await f();
      } catch (e) {
        return send(failStatus, 'text/plain', `error: ${e instanceof Error ? e.message : 'unknown'}\n`);
      }
      send(
        h.ok ? 200 : 503,
        'application/json',
        JSON.stringify({ status: h.ok ? 'ok' : 'unavailable', ...h.details }),
      );
    };
    const handle = async () => {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return send(405, 'text/plain', 'method not allowed\n');
      switch (path) {
        case '/metrics':
          return send(200, endpoints.registry.contentType, await endpoints.registry.metrics());
        case '/healthz':
          return check(endpoints.healthz, 500);
        case '/readyz':
          // Not ready when the check cannot tell: a balancer or probe reads 503 as "not now".
          return check(endpoints.readyz ?? endpoints.healthz, 503);
        default:
          return send(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz\n');
      }
    };
    handle().catch((e: unknown) =>
      send(500, 'text/plain', `error: ${e instanceof Error ? e.message : 'unknown'}\n`),
    );
  };
  return listenHttp({ name: 'http', host, port, handler, onError: endpoints.onError });
}
