import { connect } from 'node:net';
import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { startHealthServer } from '../src/index.js';

describe('startHealthServer', () => {
  it('serves /metrics, /healthz and /readyz, refuses the rest, and closes twice', async () => {
    let ready = false;
    const server = await startHealthServer('127.0.0.1', 0, {
      registry: { contentType: 'text/plain; version=0.0.4', metrics: () => Promise.resolve('ccat_up 1\n') },
      healthz: () => ({ ok: true, details: { inFlight: 2 } }),
      readyz: () => ({ ok: ready, details: { redis: ready ? 'ready' : 'connecting' } }),
    });
    const base = `http://127.0.0.1:${server.port}`;
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4');
    expect(await metrics.text()).toBe('ccat_up 1\n');
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ status: 'ok', inFlight: 2 });
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    expect(await notReady.json()).toEqual({ status: 'unavailable', redis: 'connecting' });
    ready = true;
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(`${base}/metrics`, { method: 'POST' })).status).toBe(405);
    await server.close();
    await server.close();
    await expect(fetch(`${base}/healthz`)).rejects.toThrow();
  });

  it('answers 500 when a check throws, and keeps serving', async () => {
    const server = await startHealthServer('127.0.0.1', 0, {
      registry: { contentType: 'text/plain', metrics: () => Promise.reject(new Error('boom')) },
      healthz: () => ({ ok: true, details: {} }),
    });
    const base = `http://127.0.0.1:${server.port}`;
    expect((await fetch(`${base}/metrics`)).status).toBe(500);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    await server.close();
  });

  it('refuses a port in use with a configuration error (exit 2 for a service), not an unknown one', async () => {
    const first = await startHealthServer('127.0.0.1', 0, {
      registry,
      healthz: () => ({ ok: true, details: {} }),
    });
    try {
      const second = startHealthServer('127.0.0.1', first.port, {
        registry,
        healthz: () => ({ ok: true, details: {} }),
      });
      await expect(second).rejects.toBeInstanceOf(ConfigurationError);
      await expect(second).rejects.toMatchObject({
        code: 'HTTP_LISTEN_FAILED',
        retryable: false,
        context: { errno: 'EADDRINUSE' },
        message: expect.stringContaining('already in use') as unknown,
      });
    } finally {
      await first.close();
    }
  });

  it('answers a malformed request 400 and keeps serving; a readiness check that throws is 503', async () => {
    const errors: string[] = [];
    const server = await startHealthServer('127.0.0.1', 0, {
      registry,
      healthz: () => ({ ok: true, details: {} }),
      readyz: () => Promise.reject(new Error('database unreachable')),
      onError: (_e, where) => errors.push(where),
    });
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = connect(server.port, '127.0.0.1', () => socket.write('NOT HTTP AT ALL\r\n\r\n'));
        let text = '';
        socket.on('data', (d: Buffer) => (text += d.toString()));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
      });
      expect(reply).toMatch(/^HTTP\/1\.1 400/);
      expect(errors).toEqual(['client']);
      const ready = await fetch(`http://127.0.0.1:${server.port}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.text()).toContain('database unreachable');
      expect((await fetch(`http://127.0.0.1:${server.port}/healthz`)).status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

const registry = { contentType: 'text/plain', metrics: () => Promise.resolve('') };
