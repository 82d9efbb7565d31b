// The dashboard over HTTP against the seeded database of cli.test.ts (seed listed at its top):
// token required, Content-Security-Policy on every page, figures from the database, hostile text
// escaped, retry refused without the admin token or from another origin, and done (fenced) with it.
// The browser-driven tests live in apps/demo (test/dashboard-browser.test.ts).
import type { HttpServer } from '@ccat/service';
import { describe, expect } from 'vitest';
import { loadMonitorConfig } from '../src/config.js';
import { CONTENT_SECURITY_POLICY } from '../src/dashboard/server.js';
import { cliTest } from './support/cli-fixture.js';

const TOKEN = 'read-token-0123456789';
const ADMIN = 'admin-token-0123456789';
const HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>';

const it = cliTest('dash_http', { heartbeats: true });
let dash: HttpServer;
it.beforeAll(async ({ f, dashboard }) => {
  await f.database.db
    .updateTable('data_transfers')
    .set({ last_error_message: HOSTILE })
    .where('id', '=', f.id('D'))
    .execute();
  dash = await dashboard({ DASHBOARD_TOKEN: TOKEN, DASHBOARD_ADMIN_TOKEN: ADMIN });
});

const base = () => `http://127.0.0.1:${dash.port}`;
const get = (path: string, token: string | null = TOKEN) =>
  fetch(`${base()}${path}`, { headers: token === null ? {} : { authorization: `Bearer ${token}` } });
const post = (fields: Record<string, string | string[]>, headers: Record<string, string> = {}) => {
  const body = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const one of [v].flat()) body.append(k, one);
  return fetch(`${base()}/retry`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...headers,
    },
    body,
  });
};

describe('dashboard over HTTP', () => {
  it('requires the token; every page has the CSP; figures are the database', async ({ f }) => {
    expect((await get('/', null)).status).toBe(401);
    expect((await get('/', 'wrong-token-0123456789')).status).toBe(401);
    const basic = await fetch(`${base()}/`, {
      headers: { authorization: `Basic ${Buffer.from(`op:${TOKEN}`).toString('base64')}` },
    });
    expect(basic.status).toBe(200);
    for (const path of [
      '/',
      '/failures',
      '/trends',
      '/trends?unit=day',
      `/operations/data_transfer/${f.id('C')}`,
    ]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy')).toBe(CONTENT_SECURITY_POLICY);
      expect(await res.text()).not.toMatch(new RegExp(`${TOKEN}|${ADMIN}`));
    }
    const failed = await f.database.db
      .selectFrom('data_transfers')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('status', '=', 'failed')
      .executeTakeFirstOrThrow();
    const now = await (await get('/?partial=1')).text();
    expect(now).not.toContain('<html');
    const row = /<tr><td>data_transfer<\/td>(.*?)<\/tr>/.exec(now)?.[1] ?? '';
    const cells = [...row.matchAll(/<span class="num">(\d+)<\/span>/g)].map((m) => Number(m[1]));
    // pending, scheduled, in_progress, completed, failed, total
    expect(cells[4]).toBe(Number(failed.n));
  });

  it('shows hostile error text escaped, never as markup', async ({ f }) => {
    const page = await (await get(`/operations/data_transfer/${f.id('D')}`)).text();
    expect(page).not.toContain('<script>alert');
    expect(page).not.toContain('<img src=x');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect((await get('/operations/data_transfer/987654321')).status).toBe(404);
    expect((await get('/operations/teleport/1')).status).toBe(400);
    expect((await get('/failures?since=forever')).status).toBe(400);
  });

  it('refuses a retry without the admin token or from another origin; retries, fenced, with it', async ({
    f,
  }) => {
    const id = f.id('E');
    const confirm = await (await get(`/retry?type=data_transfer&id=${id}`)).text();
    const item = /name="item" value="([^"]+)"/.exec(confirm)?.[1];
    expect(item).toBe(`${id}:0`);
    const fields = { type: 'data_transfer', item: item!, confirm: 'yes' };
    expect((await post(fields)).status).toBe(403);
    expect((await post({ ...fields, admin_token: 'wrong-admin-token-000' })).status).toBe(403);
    expect((await post({ ...fields, admin_token: ADMIN }, { origin: 'http://evil.example' })).status).toBe(
      403,
    );
    expect((await post({ ...fields, admin_token: ADMIN }, { 'sec-fetch-site': 'cross-site' })).status).toBe(
      403,
    );
    expect(await f.row('data_transfer', 'E')).toMatchObject({ status: 'failed', attempt: 0 });

    const ok = await post(
      { ...fields, admin_token: ADMIN },
      { origin: base().replace('127.0.0.1', '127.0.0.1') },
    );
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('Retried 1 of 1');
    expect(await f.row('data_transfer', 'E')).toMatchObject({ status: 'pending', attempt: 1, retryCount: 0 });
    const events = await f.database.db
      .selectFrom('operation_events')
      .select(['event', 'worker_id'])
      .where('operation_type', '=', 'data_transfer')
      .where('operation_id', '=', id)
      .where('event', '=', 'manual_retry')
      .execute();
    expect(events).toEqual([{ event: 'manual_retry', worker_id: 'cli:dashboard' }]);
    // The same confirmation again: the row moved on, so nothing changes.
    const again = await (await post({ ...fields, admin_token: ADMIN })).text();
    expect(again).toContain('Retried 0 of 1');
    expect(again).toContain('changed');
  });

  it('bulk retry: the confirmation lists the failed rows of a code; confirmed, each is reset separately and fenced', async ({
    f,
  }) => {
    // D and E failed with CHECKSUM_MISMATCH; E was retried above, so D is the one left.
    const confirm = await (await get('/retry?type=data_transfer&code=CHECKSUM_MISMATCH&since=24h')).text();
    const items = [...confirm.matchAll(/name="item" value="([^"]+)"/g)].map((m) => m[1]!);
    expect(items).toEqual([`${f.id('D')}:0`]);
    const done = await (
      await post({
        type: 'data_transfer',
        code: 'CHECKSUM_MISMATCH',
        item: items,
        confirm: 'yes',
        admin_token: ADMIN,
      })
    ).text();
    expect(done).toContain('Retried 1 of 1');
    expect(await f.row('data_transfer', 'D')).toMatchObject({ status: 'pending', attempt: 1 });
    const none = await (await get('/retry?type=data_transfer&code=CHECKSUM_MISMATCH')).text();
    expect(none).toContain('Nothing to retry');
  });

  it('will not listen off loopback without a token; the tokens never appear in a configuration error', () => {
    const env = { DATABASE_URL: 'postgres://127.0.0.1/x', REDIS_URL: 'redis://127.0.0.1' };
    expect(() => loadMonitorConfig({ env, file: { dashboard: { enabled: true, host: '0.0.0.0' } } })).toThrow(
      /dashboard\.token: required when dashboard\.host is not loopback/,
    );
    expect(
      loadMonitorConfig({
        env: { ...env, DASHBOARD_TOKEN: TOKEN },
        file: { dashboard: { enabled: true, host: '0.0.0.0' } },
      }).dashboard.token,
    ).toBe(TOKEN);
    let message = '';
    try {
      loadMonitorConfig({ env: { ...env, DASHBOARD_ADMIN_TOKEN: 'short-secret' }, file: {} });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('dashboard.adminToken');
    expect(message).not.toContain('short-secret');
  });
});
