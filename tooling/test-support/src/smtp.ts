// The one test SMTP server (smtp-server) for the tests, the demo, the soak and the fault suite: on
// 127.0.0.1, it keeps what it accepts, can be stopped and started again on the same port (an
// outage), and can turn slow or hang after DATA while it runs.
import { createConnection, createServer, type AddressInfo, type Socket } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  readonly envelopeFrom: string;
  readonly envelopeTo: string[];
  readonly raw: string;
  /** Header names lower-cased; unfolded and decoded. */
  readonly headers: Map<string, string>;
  readonly headerLines: string[];
  readonly subject: string;
  readonly text: string;
  /** The `X-CCAT-Notification-Id` header the email channel sets: the outbox row the mail delivers. */
  readonly notificationId: string | undefined;
  /** When the whole message had arrived (ms since the epoch). */
  readonly receivedAt: number;
}

/** One client connection as the server saw it (epoch ms). */
export interface SmtpSession {
  readonly openedAt: number;
  closedAt: number | undefined;
}

export interface TestSmtp {
  readonly port: number;
  /** Every mail the server accepted (answered 250 after DATA), in order. */
  readonly mails: ReceivedMail[];
  /** Messages read to their end while `hangAfterData` and never answered: the client was not told. */
  readonly unanswered: ReceivedMail[];
  /**
   * The delay of each reply, in ms (a TCP proxy in front of the server holds back each chunk it
   * sends). Settable while running only when the server was started with `replyDelayMs` (0 is fine).
   */
  replyDelayMs: number;
  /** A hung server: it takes the whole message after DATA and then never answers. Settable while running. */
  hangAfterData: boolean;
  /** Every client connection, in the order they came. */
  readonly sessions: SmtpSession[];
  /** Stops listening (connections refused) until start(). */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function decodeWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, '?==?')
    .replace(/=\?([^?]+)\?([QqBb])\?([^?]*)\?=/g, (_m, _charset: string, enc: string, data: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(data, 'base64').toString('utf8')
        : Buffer.from(
            data
              .replace(/_/g, ' ')
              .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16))),
            'latin1',
          ).toString('utf8'),
    );
}

function decodeQp(body: string): string {
  const bytes = body
    .replace(/=\r?\n/g, '')
    .replace(/=([0-9A-Fa-f]{2})/g, (_x, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

/** A raw message (CRLF lines) as the server received it, its headers unfolded and decoded. */
export function parseMail(raw: string, envelopeFrom = '', envelopeTo: string[] = []): ReceivedMail {
  const split = raw.indexOf('\r\n\r\n');
  const head = raw.slice(0, split);
  const bodyRaw = raw.slice(split + 4);
  const headerLines = head.split(/\r\n(?![ \t])/);
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const i = line.indexOf(':');
    headers.set(
      line.slice(0, i).toLowerCase(),
      decodeWords(
        line
          .slice(i + 1)
          .replace(/\r\n[ \t]+/g, ' ')
          .trim(),
      ),
    );
  }
  const cte = (headers.get('content-transfer-encoding') ?? '7bit').toLowerCase();
  const text =
    cte === 'quoted-printable'
      ? decodeQp(bodyRaw)
      : cte === 'base64'
        ? Buffer.from(bodyRaw, 'base64').toString('utf8')
        : bodyRaw;
  return {
    envelopeFrom,
    envelopeTo,
    raw,
    headers,
    headerLines,
    subject: headers.get('subject') ?? '',
    text: text.replace(/\r\n/g, '\n'),
    notificationId: headers.get('x-ccat-notification-id'),
    receivedAt: Date.now(),
  };
}

export interface TestSmtpOptions {
  /** Only these credentials are accepted (else 535). */
  readonly auth?: { user: string; pass: string };
  /**
   * A slow server: every reply (greeting, EHLO, MAIL, RCPT, DATA, end of data, QUIT) reaches the
   * client this many ms late. A TCP proxy in front of the server holds back each chunk it sends;
   * given (even 0), the delay can be changed while the server runs.
   */
  readonly replyDelayMs?: number;
  /** Advertise PIPELINING (default true); without it a client waits for every reply in turn. */
  readonly pipelining?: boolean;
  /** A hung server from the start (see `TestSmtp.hangAfterData`). */
  readonly hangAfterData?: boolean;
  /** Runs when a whole message has arrived, before the server answers 250 (awaited). */
  readonly beforeAccept?: () => Promise<void> | void;
}

/** Starts the server on a random port. */
export async function startSmtp(options: TestSmtpOptions = {}): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  const unanswered: ReceivedMail[] = [];
  const sessions: SmtpSession[] = [];
  let hang = options.hangAfterData === true;
  const byId = new Map<string, SmtpSession>();

  let server: SMTPServer | undefined;
  let port = 0;

  const listen = async (): Promise<void> => {
    const s = new SMTPServer({
      secure: false,
      disabledCommands: options.auth === undefined ? ['STARTTLS', 'AUTH'] : ['STARTTLS'],
      authOptional: options.auth === undefined,
      allowInsecureAuth: true,
      logger: false,
      closeTimeout: 500,
      hidePIPELINING: options.pipelining === false,
      onConnect(session, callback) {
        const entry: SmtpSession = { openedAt: Date.now(), closedAt: undefined };
        sessions.push(entry);
        byId.set(session.id, entry);
        callback();
      },
      onClose(session) {
        const entry = byId.get(session.id);
        if (entry !== undefined) entry.closedAt = Date.now();
        byId.delete(session.id);
      },
      onAuth(auth, _session, callback) {
        if (auth.username === options.auth?.user && auth.password === options.auth?.pass)
          callback(null, { user: auth.username });
        else callback(Object.assign(new Error('Invalid username or password'), { responseCode: 535 }));
      },
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const env = session.envelope;
          const mail = parseMail(
            Buffer.concat(chunks).toString('utf8'),
            env.mailFrom === false ? '' : env.mailFrom.address,
            env.rcptTo.map((r) => r.address),
          );
          // A hung server keeps the message and never answers; the client must give up.
          if (hang) return void unanswered.push(mail);
          void Promise.resolve()
            .then(options.beforeAccept)
            .then(
              () => {
                mails.push(mail);
                callback();
              },
              (e: unknown) => callback(e instanceof Error ? e : new Error(String(e))),
            );
        });
      },
    });
    s.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      s.server.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve());
    });
    port = (s.server.address() as AddressInfo).port;
    server = s;
  };
  const stop = async (): Promise<void> => {
    const s = server;
    server = undefined;
    if (s !== undefined) await new Promise<void>((resolve) => s.close(() => resolve()));
  };
  await listen();
  const proxy = options.replyDelayMs === undefined ? undefined : await slowProxy(port, options.replyDelayMs);
  return {
    get port() {
      return proxy?.port ?? port;
    },
    mails,
    unanswered,
    get replyDelayMs() {
      return proxy?.delayMs ?? 0;
    },
    set replyDelayMs(ms: number) {
      if (proxy === undefined)
        throw new Error('startSmtp: pass replyDelayMs at the start to change it later');
      proxy.delayMs = ms;
    },
    get hangAfterData() {
      return hang;
    },
    set hangAfterData(on: boolean) {
      hang = on;
    },
    sessions,
    stop,
    start: listen,
    async close() {
      await proxy?.close();
      await stop();
    },
  };
}

/** A TCP proxy to 127.0.0.1:`target` that delivers what the server sends `delayMs` late, in order. */
async function slowProxy(
  target: number,
  initialDelayMs: number,
): Promise<{ port: number; delayMs: number; close(): Promise<void> }> {
  const state = { delayMs: initialDelayMs };
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    let last = 0;
    upstream.on('data', (chunk: Buffer) => {
      const at = Math.max(Date.now() + state.delayMs, last);
      last = at;
      setTimeout(() => {
        if (!client.destroyed) client.write(chunk);
      }, at - Date.now());
    });
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    upstream.on('close', () => setTimeout(end, Math.max(0, last - Date.now())));
    client.on('close', end);
    upstream.on('error', end);
    client.on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    get delayMs() {
      return state.delayMs;
    },
    set delayMs(ms: number) {
      state.delayMs = ms;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
