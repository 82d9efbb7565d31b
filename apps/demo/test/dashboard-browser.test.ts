// The dashboard in a real browser (Debian's /usr/bin/chromium, headless, driven by playwright-core)
// against a real pipeline: PostgreSQL, Redis, a worker process and a monitor process serving the
// dashboard. Each page loads and shows the database's figures; a permanently failed operation whose
// error text is hostile markup shows it inert (no dialog, no console error from a script); a write
// without the admin token is refused and changes nothing; retry with it runs the operation again to
// completion. Screenshots: apps/demo/test-output/dashboard-*.png (gitignored). The overview's page
// weight and time to first render are printed (`dashboard overview: …`).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { readOperation } from '@ccat/db';
import { waitFor } from '@ccat/test-support';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createE2E, type E2E } from './support/system.js';

const CHROMIUM = process.env['TEST_CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const OUT = join(import.meta.dirname, '..', 'test-output');
const TOKEN = 'browser-read-token-0123';
const ADMIN = 'browser-admin-token-0123';
const HOSTILE = `<img src=x onerror="alert('xss')"><script>alert('xss2')</script>"'&`;

let e: E2E;
let browser: Browser;
let context: BrowserContext;
let base: string;
let failedId: string;
const dialogs: string[] = [];
const scriptErrors: string[] = [];

beforeAll(async () => {
  await mkdir(OUT, { recursive: true });
  e = await createE2E('dash_browser');
  const monitor = await e.monitor('monitor-dash', {
    dashboard: { enabled: true, port: 0, token: TOKEN, adminToken: ADMIN, refreshMs: 1000 },
  });
  const started = await monitor.waitForLine((l) => l['msg'] === 'monitor started');
  base = `http://127.0.0.1:${String(started['dashboardPort'])}`;
  const [ok, bad] = await e.seed(2);
  failedId = bad!;
  await e.worker('worker-dash', {
    faults: {
      enabled: true,
      rules: [
        {
          kind: 'non_retryable',
          operationTypes: ['raw_data_package'],
          operationIds: [bad],
          attempts: [0],
          stage: 'start',
          message: HOSTILE,
        },
      ],
    },
  });
  await waitFor(
    async () => (await readOperation(e.database.db, 'raw_data_package', ok!))?.status === 'completed',
    {
      timeoutMs: 30_000,
      message: 'the healthy package completed',
    },
  );
  await waitFor(
    async () => (await readOperation(e.database.db, 'raw_data_package', bad!))?.status === 'failed',
    {
      timeoutMs: 30_000,
      message: 'the faulty package failed',
    },
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  context = await browser.newContext({ httpCredentials: { username: 'operator', password: TOKEN } });
  context.on('page', watch);
}, 90_000);

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await e?.close();
});

function watch(page: Page): void {
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (err) => scriptErrors.push(err.message));
}

async function open(path: string): Promise<Page> {
  const page = await context.newPage();
  const res = await page.goto(`${base}${path}`);
  expect(res?.status(), path).toBe(200);
  return page;
}

const countOf = async (status: 'completed' | 'failed') =>
  Number(
    (
      await e.database.db
        .selectFrom('raw_data_packages')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('status', '=', status)
        .executeTakeFirstOrThrow()
    ).n,
  );

describe('the dashboard in Chromium', () => {
  it('Now shows the database figures, the live worker and monitor; prints page weight and first render', async () => {
    const page = await open('/');
    const cells = await page
      .locator('#counts tr', { hasText: 'raw_data_package' })
      .first()
      .locator('td')
      .allInnerTexts();
    // type, pending, scheduled, in_progress, completed, failed, total
    expect(Number(cells[4])).toBe(await countOf('completed'));
    expect(Number(cells[5])).toBe(await countOf('failed'));
    await expect.poll(() => page.locator('#services').innerText()).toMatch(/worker-dash\s+alive/);
    expect(await page.locator('#services').innerText()).toMatch(/monitor-dash\s+alive/);
    // Live refresh: the main content is replaced without a reload.
    await page.locator('#updated', { hasText: 'updated' }).waitFor({ timeout: 10_000 });
    await page.screenshot({ path: join(OUT, 'dashboard-now.png'), fullPage: true });

    const measure = await context.newPage();
    let bytes = 0;
    measure.on('response', (r) => {
      void r.body().then(
        (b) => (bytes += b.length),
        () => undefined,
      );
    });
    await measure.goto(`${base}/`, { waitUntil: 'load' });
    // The paint entry is recorded when Chromium paints, which on a loaded machine can come after `load`.
    // (Polled through evaluate: waitForFunction compiles its string in the page, which the CSP forbids.)
    await waitFor(
      () => measure.evaluate<boolean>(`performance.getEntriesByName('first-contentful-paint').length > 0`),
      { message: 'first contentful paint recorded' },
    );
    // A string: this package is typed without the DOM library.
    const paint = await measure.evaluate<{ fcpMs: number | null; responseEndMs: number | null }>(`(() => {
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      const nav = performance.getEntriesByType('navigation')[0];
      return { fcpMs: fcp ? fcp.startTime : null, responseEndMs: nav ? nav.responseEnd : null };
    })()`);
    await waitFor(() => bytes > 0, { message: 'bodies measured' });
    console.log(
      `dashboard overview: ${bytes} bytes (HTML + CSS + JS, uncompressed), first contentful paint ${paint.fcpMs?.toFixed(0) ?? 'n/a'} ms, response end ${paint.responseEndMs?.toFixed(0) ?? 'n/a'} ms`,
    );
    expect(paint.fcpMs).not.toBeNull();
  });

  it('Failures and Trends load; hostile error text stays inert text', async () => {
    const failures = await open('/failures');
    expect(await failures.locator('main').innerText()).toContain('INJECTED_PERMANENT_FAULT');
    expect(await failures.locator('main').innerText()).toMatch(/To do: /);
    await failures.screenshot({ path: join(OUT, 'dashboard-failures.png'), fullPage: true });
    // The live refresh (every 1 s here) leaves a field the operator is typing in alone.
    await failures.fill('input[name="since"]', '7d');
    const stamp = await failures.locator('#updated').innerText();
    await failures.waitForTimeout(2500);
    expect(await failures.inputValue('input[name="since"]')).toBe('7d');
    // No swap meanwhile: the stamp (to the second) would have moved on.
    expect(await failures.locator('#updated').innerText()).toBe(stamp);
    // Once the field is left, the refresh resumes.
    await failures.locator('h2').first().click();
    await expect.poll(() => failures.locator('#updated').innerText(), { timeout: 10_000 }).not.toBe(stamp);
    const trends = await open('/trends');
    expect(await trends.locator('svg').count()).toBe(6);
    await trends.screenshot({ path: join(OUT, 'dashboard-trends.png'), fullPage: true });

    const history = await open(`/operations/raw_data_package/${failedId}`);
    expect(await history.locator('#row-status').innerText()).toBe('failed');
    expect(await history.locator('#row-message').innerText()).toContain(`<img src=x onerror=`);
    expect(await history.locator('main img').count()).toBe(0);
    expect(await history.locator('main script').count()).toBe(0);
    await history.screenshot({ path: join(OUT, 'dashboard-history.png'), fullPage: true });
    await history.waitForTimeout(1500); // one live refresh with the hostile text in it
    expect(dialogs).toEqual([]);
    expect(scriptErrors).toEqual([]);
  });

  it('refuses a retry without the admin token; retries with it and the operation runs again to completion', async () => {
    const history = await open(`/operations/raw_data_package/${failedId}`);
    await history.getByRole('button', { name: 'retry this operation…' }).click();
    await history.waitForURL(/\/retry\?/);
    await history.screenshot({ path: join(OUT, 'dashboard-retry-confirm.png'), fullPage: true });
    await history.fill('input[name="admin_token"]', 'not-the-admin-token-000');
    const refused = await Promise.all([
      history.waitForResponse((r) => r.url().endsWith('/retry') && r.request().method() === 'POST'),
      history.getByRole('button', { name: 'Confirm retry' }).click(),
    ]);
    expect(refused[0].status()).toBe(403);
    expect(await history.locator('#message').innerText()).toContain('admin token is missing or wrong');
    expect(await readOperation(e.database.db, 'raw_data_package', failedId)).toMatchObject({
      status: 'failed',
      attempt: 0,
    });

    await history.goBack();
    await history.fill('input[name="admin_token"]', ADMIN);
    await history.getByRole('button', { name: 'Confirm retry' }).click();
    await history.locator('#retry-result').waitFor();
    expect(await history.locator('#retry-result').innerText()).toContain('Retried 1 of 1');
    await waitFor(
      async () => (await readOperation(e.database.db, 'raw_data_package', failedId))?.status === 'completed',
      {
        timeoutMs: 30_000,
        message: 'the retried operation completed',
      },
    );
    const done = await open(`/operations/raw_data_package/${failedId}`);
    expect(await done.locator('#row-status').innerText()).toBe('completed');
    expect(await done.locator('#events').innerText()).toMatch(/manual_retry[\s\S]*completed/);
    await done.screenshot({ path: join(OUT, 'dashboard-retried.png'), fullPage: true });
  });
});
