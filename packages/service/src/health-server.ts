// A service's health over HTTP: /metrics (Prometheus text), /healthz (alive) and /readyz (its
// connections work), the HTTP face of the health keys this package keeps in Redis.
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigurationError } from '@ccat/errors';

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
  /**
   * Errors of the listening server after it started, and of its client connections (a malformed
   * request, a reset socket). They are handled either way (the server keeps serving); this only
   * reports them. Default: ignored.
   */
  readonly onError?: (error: Error, where: 'server' | 'client') => void;
}

/** Listen errors that are the configuration's fault (the address or port), by errno code. */
const LISTEN_PROBLEMS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use (another process listens on it)',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'the address is not one of this host',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

export interface HealthServer extends AsyncDisposable {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the server on host:port (0: a free port); `close()` is bounded and safe twice.
 *
 * Throws `ConfigurationError` (code `HTTP_LISTEN_FAILED`, not retryable, `context.errno` the
 * system's code) when it cannot listen: port in use, privileged port, an address not of this host.
 * A process should exit 2 on it before starting any work. After the start, server and client
 * socket errors are handled (reported to `onError`) and never end the process; a check that
 * throws answers 500 for /healthz and 503 for /readyz.
 */
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
  });
  server.keepAliveTimeout = 5_000;
  const onError = endpoints.onError ?? (() => undefined);
  // A malformed request or a socket reset: answer 400 when still possible, never crash.
  server.on('clientError', (e: Error, socket: Socket) => {
    onError(e, 'client');
    if (socket.writable && !socket.destroyed)
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => {
      const problem = e.code === undefined ? undefined : LISTEN_PROBLEMS[e.code];
      reject(
        problem === undefined
          ? e
          : new ConfigurationError(`http: cannot listen on ${host}:${port}: ${problem} [${e.code}]`, {
              code: 'HTTP_LISTEN_FAILED',
              context: { errno: e.code, host, port },
              cause: e,
            }),
      );
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  server.on('error', (e: Error) => onError(e, 'server'));
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }));
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
