// The one lifecycle of every CCAT HTTP listener (the health server, the monitor's dashboard).
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ConfigurationError, type ErrorCode } from '@ccat/errors';
import { settlesWithin } from './run-service.js';

/** Listen errors that are the configuration's fault (the address or port), by errno code. */
const LISTEN_PROBLEMS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is already in use (another process listens on it)',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'the address is not one of this host',
  EAFNOSUPPORT: 'the address family (IPv4 or IPv6) is not available on this host',
  ENOTFOUND: 'the host name does not resolve',
  EAI_AGAIN: 'the host name does not resolve',
};

export interface HttpListenOptions {
  /** Who listens, the subject of the listen error (`http: cannot listen on …`). */
  readonly name: string;
  readonly host: string;
  /** 0: a free port, read back from `HttpServer.port`. */
  readonly port: number;
  readonly handler: RequestListener;
  /** The code of the listen error (default `HTTP_LISTEN_FAILED`). */
  readonly code?: ErrorCode;
  /** Errors of the server after the start and of client connections: handled anyway, only reported. */
  readonly onError?: ((error: Error, where: 'server' | 'client') => void) | undefined;
  /** How long `close()` lets requests in flight finish, in ms (default 2000). */
  readonly closeTimeoutMs?: number;
}

export interface HttpServer extends AsyncDisposable {
  readonly port: number;
  /** Stops listening and ends the connections; bounded (`closeTimeoutMs`), safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts a node:http server for `handler` on host:port; resolves once it listens. Throws
 * `ConfigurationError` (`code`, not retryable, `context` `{ errno, host, port }`, message
 * `<name>: cannot listen on <host>:<port>: <why> [<errno>]`) when the address or port is at fault
 * (in use, privileged, not of this host, a name that does not resolve): exit 2 on it. Other listen
 * errors are thrown as Node reports them. Nothing a client sends ends the process: a request Node
 * cannot parse is answered 400 (431: headers or URL too large) and closed. `close()` ends idle
 * keep-alive connections at once and busy ones after `closeTimeoutMs`, so it always resolves within
 * that bound; a second call returns the first one's promise.
 */
export async function listenHttp(o: HttpListenOptions): Promise<HttpServer> {
  const { host, port, onError = () => undefined, closeTimeoutMs = 2_000 } = o;
  const server = createServer(o.handler);
  server.on('clientError', (e: NodeJS.ErrnoException, socket: Socket) => {
    onError(e, 'client');
    if (!socket.writable || socket.destroyed) return void socket.destroy();
    const status =
      e.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });
  // Every socket, also one past its request (ended after a clientError, half-open): close() ends them.
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    const failed = (e: NodeJS.ErrnoException) => {
      const problem = e.code === undefined ? undefined : LISTEN_PROBLEMS[e.code];
      reject(
        problem === undefined
          ? e
          : new ConfigurationError(`${o.name}: cannot listen on ${host}:${port}: ${problem} [${e.code}]`, {
              code: o.code ?? 'HTTP_LISTEN_FAILED',
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
    (closing ??= (async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      // Requests still in flight past the bound: their connections end, and close() resolves.
      if (!(await settlesWithin(closed, closeTimeoutMs))) for (const s of sockets) s.destroy();
    })());
  return { port: (server.address() as AddressInfo).port, close, [Symbol.asyncDispose]: close };
}
