// The dashboard against hostile and broken requests, over HTTP and raw sockets, on the seeded
// database of cli.test.ts (seed listed at its top): a request target that is no URL answers 400 and
// the process lives on; a rebound DNS name is refused when no token guards the dashboard; the
// Origin check compares host and port (a TLS proxy's https Origin passes, another port or `null`
// does not); bidi and control characters are shown, not obeyed; PostgreSQL unreachable is a 503
// page; and the Now and Failures pages render stuck-with-why, unserved work, advice and the retry
// command by name.
import { connect } from 'node:net';
import { createDatabase, type CcatDatabase } from '@ccat/db';
import type { HttpServer } from '@ccat/service';
import { freePort } from '@ccat/test-support';
import { pino } from 'pino';
import { afterAll, describe, expect } from 'vitest';
import { loadMonitorConfig } from '../src/config.js';
import { startDashboard } from '../src/dashboard/server.js';
import { cliTest } from './support/cli-fixture.js';

const TOKEN = 'read-token-0123456789';
const ADMIN = 'admin-token-0123456789';
// U+202E (right-to-left override) and BEL in an error message.
const BIDI = 'checksum of \u202Etxt.exe\u0007 differs';

const it = cliTest('dash_hostile', { heartbeats: true });
let open: HttpServer;
let guarded: HttpServer;
let down: HttpServer | undefined;
let downDb: CcatDatabase | undefined;
const silent = pino({ level: 'silent' });

it.beforeAll(async ({ f, dashboard }) => {
  await f.database.db
    .updateTable('data_transfers')
    .set({ last_error_message: BIDI })
    .where('id', '=', f.id('E'))
    .execute();
  open = await dashboard({ DASHBOARD_ADMIN_TOKEN: ADMIN });
  guarded = await dashboard({ DASHBOARD_TOKEN: TOKEN, DASHBOARD_ADMIN_TOKEN: ADMIN });
});
afterAll(async () => {
  await down?.close();
  await downDb?.close();
});

/** One raw HTTP/1.1 exchange: the status line of the answer, or '' when the server closed without one. */
function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let answer = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      answer += d;
      if (answer.includes('\r\n')) socket.destroy();
    });
    socket.on('close', () => resolve(answer.split('\r\n')[0] ?? ''));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')));
  });
}

const url = (d: HttpServer, path: string) => `http://127.0.0.1:${d.port}${path}`;

describe('dashboard against hostile requests', () => {
  it('answers 400 to a request target that is no URL, before and after authentication, and keeps serving', async () => {
    for (const d of [open, guarded]) {
      expect(await raw(d.port, 'GET http://[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')).toBe(
        'HTTP/1.1 400 Bad Request',
      );
    }
    const huge = `GET /failures?code=${'A'.repeat(20_000)} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    expect(await raw(open.port, huge)).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect((await fetch(url(open, '/'))).status).toBe(200);
    const bad = await fetch(url(guarded, '/operations/data_transfer/%E0%A4%A'), {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toContain('not percent-encoded text');
  });

  it('without a token, answers only to a loopback Host (DNS rebinding); with one, the token decides', async () => {
    const as = async (d: HttpServer, host: string) =>
      raw(d.port, `GET / HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\n\r\n`);
    for (const host of [`127.0.0.1:${open.port}`, `localhost:${open.port}`, `[::1]:${open.port}`])
      expect(await as(open, host), host).toBe('HTTP/1.1 200 OK');
    for (const host of [`attacker.example:${open.port}`, '10.0.0.7', ''])
      expect(await as(open, host), host).toMatch(/^HTTP\/1\.1 (421|400) /);
    expect(await raw(open.port, 'GET / HTTP/1.0\r\n\r\n')).toBe('HTTP/1.1 421 Misdirected Request');
    expect(await as(guarded, `dashboard.example:${guarded.port}`)).toBe('HTTP/1.1 200 OK');
  });

  it('takes a confirmed retry from an https Origin of the same host (a TLS proxy), not from another port or null', async ({
    f,
  }) => {
    const post = (origin: string, item: string) =>
      fetch(url(open, '/retry'), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin },
        body: new URLSearchParams({ type: 'data_transfer', item, confirm: 'yes', admin_token: ADMIN }),
      });
    const item = `${f.id('C')}:1`;
    expect(await f.row('data_transfer', 'C')).toMatchObject({ status: 'failed', attempt: 1 });
    expect((await post(`http://127.0.0.1:${open.port + 1}`, item)).status).toBe(403);
    expect((await post('null', item)).status).toBe(403);
    expect((await post(`http://127.0.0.1.attacker.example:${open.port}`, item)).status).toBe(403);
    expect(await f.row('data_transfer', 'C')).toMatchObject({ status: 'failed', attempt: 1 });
    const ok = await post(`https://127.0.0.1:${open.port}`, item);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('Retried 1 of 1');
    expect(await f.row('data_transfer', 'C')).toMatchObject({ status: 'pending', attempt: 2 });
  });

  it('shows bidi and control characters as visible code points, never applied', async ({ f }) => {
    const page = await (await fetch(url(open, `/operations/data_transfer/${f.id('E')}`))).text();
    expect(page).toContain('checksum of &lt;U+202E&gt;txt.exe&lt;U+0007&gt; differs');
    expect(page).not.toContain('\u202E');
    expect(page).not.toContain('\u0007');
  });

  it('Now names what is stuck and why and the work nothing serves; Failures gives the advice and the retry command', async ({
    f,
  }) => {
    const now = await (await fetch(url(open, '/?partial=1'))).text();
    const stuck = /<section id="stuck">(.*?)<\/section>/s.exec(now)?.[1] ?? '';
    expect(stuck).toMatch(/<h2>Stuck now: \d+<\/h2>/);
    // N: in_progress, its heartbeat expired, its worker dead.
    expect(stuck).toContain(`<a href="/operations/unpack/${f.id('N')}">unpack ${f.id('N')}</a>`);
    expect(stuck).toMatch(/worker-dead <span class="bad">\(not alive\)<\/span>/);
    expect(stuck).toMatch(/<span class="why">in_progress, heartbeat [^<]*past its deadline/);
    expect(now).not.toContain('status-stuck');
    const unserved = /<section id="unserved">(.*?)<\/section>/s.exec(now)?.[1] ?? '';
    expect(unserved).toMatch(/<td>[a-z0-9_-]+_unpack<\/td><td>unpack<\/td>/);
    expect(unserved).toContain('Start a worker that serves');

    const failures = await (await fetch(url(open, '/failures?partial=1&type=data_transfer'))).text();
    const group = /<section id="group-CHECKSUM_MISMATCH-data_transfer">(.*?)<\/section>/s.exec(failures)?.[1];
    expect(group).toBeDefined();
    expect(group).toMatch(/<p class="advice"><strong>To do:<\/strong> [^<]*checksum/i);
    const commands = /<pre class="commands">([^<]*)<\/pre>/.exec(group!)?.[1]?.split('\n');
    expect(commands?.sort()).toEqual(
      [f.id('D'), f.id('E')].map((id) => `ccat-recovery retry data_transfer ${id}`).sort(),
    );
    expect(group).toMatch(/<span class="bad">failed \(attempt 0\)<\/span>/);
    expect(failures).not.toMatch(/<th>current<\/th>|<th>retry command<\/th>|<strong>advice:/);
  });

  it('answers 503 with the reason when PostgreSQL is unreachable, and keeps serving', async ({ f }) => {
    const port = await freePort();
    downDb = createDatabase({
      connectionString: `postgres://postgres@127.0.0.1:${port}/test`,
      connectTimeoutMs: 2_000,
    });
    down = await startDashboard({
      config: loadMonitorConfig({ env: f.env, file: { dashboard: { enabled: true, port: 0 } } }),
      db: downDb.db,
      redis: f.redis,
      logger: silent,
    });
    for (const path of ['/failures', '/trends', `/operations/data_transfer/${f.id('D')}`]) {
      const res = await fetch(url(down, path));
      expect(res.status, path).toBe(503);
      expect(await res.text()).toMatch(/a service is not reachable now.*ECONNREFUSED/);
    }
    const now = await fetch(url(down, '/'));
    expect(now.status).toBe(200);
    expect(await now.text()).toContain('PostgreSQL is not reachable');
  });
});
