// listenHttp, the one lifecycle of the health server and the dashboard: a listen failure is a
// ConfigurationError naming who failed, close() is bounded with connections still open (idle
// keep-alive, a request that never gets its answer), and closing twice is safe.
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { listenHttp } from '../src/index.js';

const ok = { name: 'probe', host: '127.0.0.1', port: 0, handler: () => undefined };

/** A raw client that sent `text` and is still connected. */
function client(port: number, text: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text, () => resolve(socket)));
    socket.on('error', reject);
  });
}

describe('listenHttp', () => {
  it('refuses a port in use with a ConfigurationError naming who could not listen, with the code given', async () => {
    await using first = await listenHttp(ok);
    const second = listenHttp({
      ...ok,
      name: 'dashboard',
      port: first.port,
      code: 'DASHBOARD_LISTEN_FAILED',
    });
    await expect(second).rejects.toBeInstanceOf(ConfigurationError);
    await expect(second).rejects.toMatchObject({
      code: 'DASHBOARD_LISTEN_FAILED',
      retryable: false,
      context: { errno: 'EADDRINUSE', host: '127.0.0.1', port: first.port },
      message: `dashboard: cannot listen on 127.0.0.1:${first.port}: the port is already in use (another process listens on it) [EADDRINUSE]`,
    });
    await expect(listenHttp({ ...ok, port: first.port })).rejects.toMatchObject({
      code: 'HTTP_LISTEN_FAILED',
      message: expect.stringMatching(/^probe: cannot listen on /) as unknown,
    });
  });

  it('closes at once past an idle keep-alive connection, and safely twice', async () => {
    const server = await listenHttp({ ...ok, handler: (_req, res) => res.end('hi') });
    const agent = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      request({ port: server.port, host: '127.0.0.1', agent }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    expect(agent.freeSockets).not.toEqual({});
    const started = Date.now();
    const first = server.close();
    expect(server.close()).toBe(first);
    await first;
    expect(Date.now() - started).toBeLessThan(1_000);
    await server.close();
    await expect(fetch(`http://127.0.0.1:${server.port}/`)).rejects.toThrow();
    agent.destroy();
  });

  it('ends a connection whose request is never answered at closeTimeoutMs, and close() resolves then', async () => {
    let received!: () => void;
    const seen = new Promise<void>((resolve) => (received = resolve));
    const server = await listenHttp({ ...ok, closeTimeoutMs: 300, handler: () => received() });
    const socket = await client(server.port, 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    const ended = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    await seen;
    const started = Date.now();
    await server.close();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(2_000);
    await ended;
    await server.close();
  });

  it('answers a request it cannot parse 400, and one with headers too large 431, reporting them as client errors', async () => {
    const errors: string[] = [];
    await using server = await listenHttp({ ...ok, onError: (_e, where) => errors.push(where) });
    const statusLine = async (text: string) => {
      const socket = await client(server.port, text);
      let answer = '';
      socket.setEncoding('utf8').on('data', (d: string) => (answer += d));
      await new Promise((resolve) => socket.on('close', resolve));
      return answer.split('\r\n')[0];
    };
    expect(await statusLine('NOT HTTP AT ALL\r\n\r\n')).toBe('HTTP/1.1 400 Bad Request');
    expect(await statusLine(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)).toBe(
      'HTTP/1.1 431 Request Header Fields Too Large',
    );
    expect(errors).toEqual(['client', 'client']);
  });
});
