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
});
