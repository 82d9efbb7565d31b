// A TCP proxy whose open connections can be silenced: bytes are dropped both ways and the sockets
// stay open (a frozen server, a failover whose old connections are never reset), while new
// connections work.
import { createConnection, createServer, type Socket } from 'node:net';

export interface SilencingProxy {
  /** `url` with its host:port replaced by the proxy's. */
  readonly url: string;
  /** Connections opened through the proxy so far. */
  readonly connections: () => number;
  silenceAll(): void;
  close(): Promise<void>;
}

/** Starts a proxy on a random loopback port in front of the server of `url` (postgres://…). */
export async function startSilencingProxy(url: string): Promise<SilencingProxy> {
  const target = new URL(url);
  const conns: { silent: boolean; sockets: Socket[] }[] = [];
  const server = createServer((client) => {
    const up = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    const c = { silent: false, sockets: [client, up] };
    conns.push(c);
    client.on('data', (d: Buffer) => {
      if (!c.silent) up.write(d);
    });
    up.on('data', (d: Buffer) => {
      if (!c.silent) client.write(d);
    });
    const end = (): void => {
      client.destroy();
      up.destroy();
    };
    client.on('close', end);
    up.on('close', end);
    client.on('error', () => undefined);
    up.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  const proxied = new URL(url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(port);
  return {
    url: proxied.toString(),
    connections: () => conns.length,
    silenceAll: () => conns.forEach((c) => (c.silent = true)),
    close: async () => {
      conns.forEach((c) => c.sockets.forEach((s) => s.destroy()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
