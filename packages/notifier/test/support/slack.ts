// A local HTTP server that speaks enough of the Slack Web API for chat.postMessage, on 127.0.0.1.
// Behaviour is scripted per call: ok, 429 with Retry-After, a platform error, an HTTP error.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SlackCall {
  /** Date.now() when the request arrived. */
  readonly at: number;
  readonly method: string;
  readonly authorization: string | undefined;
  readonly rawBody: string;
  readonly channel: string;
  readonly text: string;
  readonly blocks: unknown[];
  readonly params: Record<string, string>;
}

export type SlackReply =
  | { readonly kind: 'ok' }
  | { readonly kind: 'rate_limited'; readonly retryAfterS: number }
  | { readonly kind: 'error'; readonly error: string }
  | { readonly kind: 'http'; readonly status: number }
  /** Never answers (until close). */
  | { readonly kind: 'hang' };

export interface FakeSlack {
  /** Base URL for WebClient's slackApiUrl. */
  readonly url: string;
  /** Every request. */
  readonly calls: SlackCall[];
  /** Requests answered ok (what reached the channel). */
  readonly posted: SlackCall[];
  /** Requests left hanging whose client closed the connection (an aborted call). */
  hangsClosedByClient: number;
  /** How to answer the next request (default ok). */
  behave: (call: SlackCall) => SlackReply;
  close(): Promise<void>;
}

export async function startFakeSlack(): Promise<FakeSlack> {
  const calls: SlackCall[] = [];
  const posted: SlackCall[] = [];
  let ts = 1000;
  const fake: FakeSlack = {
    url: '',
    calls,
    posted,
    behave: () => ({ kind: 'ok' }),
    hangsClosedByClient: 0,
    close: () => Promise.resolve(),
  };
  const handle = (req: IncomingMessage, res: ServerResponse, rawBody: string): void => {
    const params = Object.fromEntries(new URLSearchParams(rawBody));
    const call: SlackCall = {
      at: Date.now(),
      method: (req.url ?? '').replace(/^\/api\//, ''),
      authorization: req.headers.authorization,
      rawBody,
      channel: params['channel'] ?? '',
      text: params['text'] ?? '',
      blocks: params['blocks'] === undefined ? [] : (JSON.parse(params['blocks']) as unknown[]),
      params,
    };
    calls.push(call);
    const reply = fake.behave(call);
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers });
      res.end(JSON.stringify(body));
    };
    switch (reply.kind) {
      case 'ok':
        posted.push(call);
        json(200, { ok: true, channel: call.channel, ts: `${++ts}.000100` });
        break;
      case 'rate_limited':
        json(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(reply.retryAfterS) });
        break;
      case 'error':
        json(200, { ok: false, error: reply.error });
        break;
      case 'http':
        json(reply.status, { ok: false });
        break;
      case 'hang':
        res.on('close', () => {
          if (!res.writableEnded) fake.hangsClosedByClient++;
        });
        break;
    }
  };
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return Object.assign(fake, {
    url: `http://127.0.0.1:${port}/api/`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
