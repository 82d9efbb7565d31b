// Over 300 lines: the dashboard's HTTP face — authentication, CSRF checks, routing of five pages and the retry write.
// The web dashboard: a listener of its own (@ccat/service's listenHttp, its own port and host, so the
// unauthenticated /metrics listener stays as it is), server-rendered pages over the admin queries of the CLI.
// Security: every request needs the bearer token when one is configured (and one is required off
// loopback, config.ts); writes (retry) need the admin token typed into the confirmation form, a
// same-origin POST (Origin / Sec-Fetch-Site checked) and go through the fenced manual retry; a strict
// Content-Security-Policy allows only this server's script and style; no secret is ever rendered.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  parseOperationId,
  parseOperationType,
  readOperation,
  type Database,
  type OperationType,
} from '@ccat/db';
import { classifyError, redactSecrets } from '@ccat/errors';
import type { RedisClient } from '@ccat/heartbeat';
import { listenHttp, type HttpServer } from '@ccat/service';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { readFailures } from '../admin/failures.js';
import { OperationNotFoundError, readHistory } from '../admin/history.js';
import { listFailedOperations, retryFailedRow, type RetryResult } from '../admin/retry.js';
import type { Source } from '../admin/sources.js';
import { readStatus } from '../admin/status.js';
import { readTrends } from '../admin/trends.js';
import { parseDuration } from '../cli/options.js';
import { isLoopbackHost, type MonitorConfig } from '../config.js';
import { DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import { layout, type Html } from './html.js';
import {
  failuresPage,
  historyPage,
  messagePage,
  nowPage,
  retryConfirmPage,
  retryResultPage,
  trendsPage,
} from './pages.js';

/** Only this server's own files; no inline script or style, no framing, forms post here only. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const MAX_BODY_BYTES = 64 * 1024;
/** Rows listed on the Now page (in flight, stalled). */
const NOW_LIMIT = 50;

export interface DashboardDeps {
  readonly config: Readonly<MonitorConfig>;
  readonly db: Kysely<Database>;
  readonly redis: RedisClient;
  readonly logger: Logger;
}

/** A request the dashboard refuses, with its HTTP status and a message safe to show. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();
/** Constant-time comparison of a presented secret with the configured one. */
function sameSecret(given: string | undefined, expected: string): boolean {
  return given !== undefined && timingSafeEqual(digest(given), digest(expected));
}

/** The token of `Authorization: Bearer T`, or the password of `Basic base64(user:T)` (browsers prompt for it). */
function presentedToken(req: IncomingMessage): string | undefined {
  const auth = req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(auth);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(auth);
  if (basic) {
    const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon < 0 ? undefined : decoded.slice(colon + 1);
  }
  return undefined;
}

/** The host name of a `Host` header (`[::1]` for IPv6, no port), or undefined when it is not one. */
function hostName(host: string | undefined): string | undefined {
  if (host === undefined || host === '') return undefined;
  try {
    return new URL(`http://${host}/`).hostname;
  } catch {
    return undefined;
  }
}

/** Whether an http(s) Origin names the host and port of the Host header (read with the Origin's scheme, so a default port compares equal either way). */
function sameHost(origin: string, host: string | undefined): boolean {
  try {
    const from = new URL(origin);
    const to = new URL(`${from.protocol}//${host ?? ''}/`);
    return (from.protocol === 'http:' || from.protocol === 'https:') && from.host === to.host;
  } catch {
    return false;
  }
}

/**
 * A POST must come from a page of this server: Sec-Fetch-Site and Origin, when sent, must say so.
 * The Origin's host and port are compared with the Host header, not its scheme, so the dashboard
 * behind a TLS-terminating proxy (Origin `https://…`, the proxy passing Host on) still takes writes.
 */
function checkSameOrigin(req: IncomingMessage): void {
  const refused = () => new Refusal(403, 'refused: the request did not come from a dashboard page');
  const site = req.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') throw refused();
  const origin = req.headers.origin;
  if (origin === undefined) return;
  if (!sameHost(origin, req.headers.host)) throw refused();
}

/** The request's URL; a request target that is no URL (`GET http://[ HTTP/1.1`) is undefined. */
function requestUrl(req: IncomingMessage): URL | undefined {
  try {
    return new URL(req.url ?? '/', 'http://dashboard');
  } catch {
    return undefined;
  }
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  const type = req.headers['content-type'] ?? '';
  if (!type.startsWith('application/x-www-form-urlencoded'))
    throw new Refusal(415, 'expected a form (application/x-www-form-urlencoded)');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new Refusal(413, 'form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** A query or form value parsed by `parse`; its error becomes a 400 with the parser's message. */
function param<T>(raw: string | null, parse: (s: string) => T): T | undefined {
  if (raw === null || raw === '') return undefined;
  try {
    return parse(raw);
  } catch (e) {
    throw new Refusal(400, classifyError(e).message);
  }
}

const ERROR_CODE = /^[A-Za-z0-9_.:-]{1,200}$/;
const errorCodeParam = (s: string) => {
  if (!ERROR_CODE.test(s)) throw new Error('invalid error code');
  return s;
};

/**
 * The fenced manual retry (admin/retry.ts, the CLI's) of one operation at the attempt the operator
 * confirmed: a row that moved on since the confirmation page is reported `changed`, never reset.
 */
async function retryAt(
  db: Kysely<Database>,
  type: OperationType,
  item: { readonly id: string; readonly attempt: number },
): Promise<RetryResult> {
  const now = await readOperation(db, type, item.id);
  if (now === undefined)
    return { type, id: item.id, outcome: 'not_found', before: null, after: null, eventId: null };
  const before = {
    id: item.id,
    attempt: item.attempt,
    retryCount: now.retryCount,
    lastErrorCode: now.lastErrorCode,
  };
  return retryFailedRow({ db, operator: 'dashboard' }, type, before, { via: 'dashboard' });
}

/**
 * Starts the dashboard on config.dashboard.host:port with `listenHttp` (name `dashboard`). Throws
 * ConfigurationError (`DASHBOARD_LISTEN_FAILED`) when it cannot listen. Request errors answer
 * 4xx/5xx pages and are logged (message redacted); nothing a request does ends the process.
 */
export function startDashboard(deps: DashboardDeps): Promise<HttpServer> {
  const { config, db, redis, logger } = deps;
  const d = config.dashboard;
  const dbSource: Source<Kysely<Database>> = { ok: true, client: db, where: 'the monitor database' };
  const redisSource: Source<RedisClient> = { ok: true, client: redis, where: 'the monitor Redis' };
  const canRetry = d.adminToken !== undefined;

  const send = (
    res: ServerResponse,
    status: number,
    type: string,
    body: string,
    extra: Record<string, string> = {},
  ) => {
    res.writeHead(status, {
      'content-type': type,
      'content-security-policy': CONTENT_SECURITY_POLICY,
      'x-content-type-options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on a form POST.
      'referrer-policy': 'same-origin',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      ...extra,
    });
    res.end(body);
  };
  const page = (res: ServerResponse, url: URL, title: string, main: Html, live: boolean, status = 200) => {
    if (url.searchParams.get('partial') === '1') send(res, status, 'text/html; charset=utf-8', main.html);
    else send(res, status, 'text/html; charset=utf-8', layout(title, url.pathname, main, live, d.refreshMs));
  };

  async function retry(req: IncomingMessage): Promise<RetryResult[]> {
    checkSameOrigin(req);
    if (d.adminToken === undefined)
      throw new Refusal(403, 'refused: the dashboard is read-only (no dashboard.adminToken configured)');
    const form = await readForm(req);
    if (!sameSecret(form.get('admin_token') ?? undefined, d.adminToken))
      throw new Refusal(403, 'refused: the admin token is missing or wrong; nothing changed');
    if (form.get('confirm') !== 'yes') throw new Refusal(400, 'refused: not confirmed; nothing changed');
    const type = param(form.get('type'), parseOperationType);
    if (type === undefined) throw new Refusal(400, 'type is required');
    const items = form.getAll('item').map((item) => {
      const m = /^(\d{1,19}):(\d{1,9})$/.exec(item);
      if (!m) throw new Refusal(400, 'invalid item');
      return { id: param(m[1]!, parseOperationId)!, attempt: Number(m[2]) };
    });
    if (items.length === 0) throw new Refusal(400, 'nothing selected');
    if (items.length > d.bulkRetryLimit) throw new Refusal(400, `at most ${d.bulkRetryLimit} at once`);
    const results: RetryResult[] = [];
    for (const item of items) results.push(await retryAt(db, type, item));
    return results;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://dashboard');
    const path = url.pathname;
    if (req.method === 'GET' && path === '/assets/dashboard.js')
      return send(res, 200, 'text/javascript; charset=utf-8', DASHBOARD_JS);
    if (req.method === 'GET' && path === '/assets/dashboard.css')
      return send(res, 200, 'text/css; charset=utf-8', DASHBOARD_CSS);
    if (req.method === 'POST' && path === '/retry') {
      const results = await retry(req);
      return page(res, url, 'Retry', retryResultPage(results), false);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new Refusal(405, 'method not allowed');
    if (path === '/') {
      const status = await readStatus({
        db: dbSource,
        redis: redisSource,
        keyPrefix: config.keyPrefix,
        limit: NOW_LIMIT,
        livenessTimeoutMs: config.monitor.livenessTimeoutMs,
        scheduleTimeoutMs: config.monitor.scheduleTimeoutMs,
      });
      return page(res, url, 'Now', nowPage(status), true);
    }
    if (path === '/failures') {
      const since = param(url.searchParams.get('since'), parseDuration) ?? parseDuration('24h');
      const type = param(url.searchParams.get('type'), parseOperationType);
      const code = param(url.searchParams.get('code'), errorCodeParam);
      const failures = await readFailures(db, { sinceMs: since.ms, type, code, examples: 5 });
      return page(res, url, 'Failures', failuresPage(failures, { since: since.text, canRetry }), true);
    }
    if (path === '/trends') {
      const unit = url.searchParams.get('unit') === 'day' ? 'day' : 'hour';
      return page(res, url, 'Trends', trendsPage(await readTrends(db, unit)), true);
    }
    const op = /^\/operations\/([a-z_]{1,40})\/([^/]{1,40})$/.exec(path);
    const decoded = (s: string) => {
      try {
        return decodeURIComponent(s);
      } catch {
        throw new Error(`invalid operation id ${JSON.stringify(s)}: not percent-encoded text`);
      }
    };
    if (op) {
      try {
        const history = await readHistory({
          db,
          redis: redisSource,
          keyPrefix: config.keyPrefix,
          type: param(op[1]!, parseOperationType)!,
          id: param(op[2]!, (s) => parseOperationId(decoded(s)))!,
          limit: 500,
        });
        return page(res, url, `${history.type} ${history.id}`, historyPage(history, canRetry), true);
      } catch (e) {
        if (e instanceof OperationNotFoundError) throw new Refusal(404, e.message);
        throw e;
      }
    }
    if (path === '/retry') {
      if (!canRetry)
        throw new Refusal(403, 'the dashboard is read-only (no dashboard.adminToken configured)');
      const type = param(url.searchParams.get('type'), parseOperationType);
      if (type === undefined) throw new Refusal(400, 'type is required');
      const id = param(url.searchParams.get('id'), parseOperationId);
      const code = param(url.searchParams.get('code'), errorCodeParam);
      const since = param(url.searchParams.get('since'), parseDuration);
      const found = await listFailedOperations(db, {
        type,
        id,
        code,
        sinceMs: id === undefined ? since?.ms : undefined,
        limit: d.bulkRetryLimit,
      });
      const rows = found.rows;
      const selection = {
        type,
        ...(id !== undefined && { id }),
        ...(code !== undefined && { code }),
        ...(since !== undefined && { since: since.text }),
      };
      return page(res, url, 'Retry', retryConfirmPage(selection, rows, found.total), false);
    }
    throw new Refusal(404, 'not found');
  }

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = requestUrl(req);
    if (url === undefined) {
      send(res, 400, 'text/plain; charset=utf-8', 'bad request: the request target is not a URL');
      return;
    }
    // Without a token the dashboard is on loopback only; a Host naming anything else is a browser
    // sent here by a rebound DNS name (a page of another site reading this one), so it is refused.
    if (d.token === undefined) {
      const name = hostName(req.headers.host);
      if (name === undefined || !isLoopbackHost(name)) {
        send(
          res,
          421,
          'text/plain; charset=utf-8',
          'refused: without dashboard.token the dashboard answers only to a loopback name (127.0.0.1, localhost, [::1]); set dashboard.token to serve it under another name',
        );
        return;
      }
    }
    if (d.token !== undefined && !sameSecret(presentedToken(req), d.token)) {
      send(res, 401, 'text/plain; charset=utf-8', 'a bearer token is required', {
        'www-authenticate': 'Basic realm="ccat-recovery dashboard", charset="UTF-8"',
      });
      return;
    }
    route(req, res).catch((e: unknown) => {
      // A client that went away mid-request (aborted body) is no failure of the dashboard.
      if (req.socket.destroyed && !(e instanceof Refusal)) return void res.destroy();
      const classified = e instanceof Refusal ? undefined : classifyError(e);
      // PostgreSQL or Redis unreachable right now: 503, and the open page's refresh tries again.
      const status = e instanceof Refusal ? e.status : classified!.retryable ? 503 : 500;
      const message =
        e instanceof Refusal
          ? e.message
          : `the page failed${status === 503 ? ' (a service is not reachable now; it is tried again at the next refresh)' : ''}: ${redactSecrets(classified!.message, 2000)} [${classified!.code}]`;
      if (status >= 500) logger.warn({ err: message, path: url.pathname }, 'dashboard request failed');
      if (res.headersSent) return void res.end();
      page(res, url, 'Error', messagePage(message), false, status);
    });
  };
  return listenHttp({
    name: 'dashboard',
    host: d.host,
    port: d.port,
    handler,
    code: 'DASHBOARD_LISTEN_FAILED',
    onError: (e, where) => logger.warn({ where, err: classifyError(e).message }, 'dashboard HTTP error'),
  });
}
