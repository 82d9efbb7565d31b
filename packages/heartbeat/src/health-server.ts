// A service's health over HTTP: /metrics (Prometheus text), /healthz (alive) and /readyz (its
// connections work), the HTTP face of the health keys this package keeps in Redis.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

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
}

export interface HealthServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/** Starts the server on host:port (0: a free port); `close()` is bounded and safe twice. */
export async function startHealthServer(
  host: string,
  port: number,
  endpoints: HealthEndpoints,
): Promise<HealthServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const check = async (f: () => HealthCheck | Promise<HealthCheck>) => {
      const h = await f();
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
          return check(endpoints.healthz);
        case '/readyz':
          return check(endpoints.readyz ?? endpoints.healthz);
        default:
          return send(404, 'text/plain', 'not found: try /metrics, /healthz, /readyz\n');
      }
    };
    handle().catch((e: unknown) =>
      send(500, 'text/plain', `error: ${e instanceof Error ? e.message : 'unknown'}\n`),
    );
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
