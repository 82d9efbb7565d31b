// A real SMTP server in this process (smtp-server), on 127.0.0.1, that keeps what it receives and
// can be stopped and started again on the same port (an outage).
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
}

/** One client connection as the server saw it (epoch ms). */
export interface SmtpSession {
  readonly openedAt: number;
  closedAt: number | undefined;
}

export interface TestSmtp {
  readonly port: number;
  readonly mails: ReceivedMail[];
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
  };
}

export interface TestSmtpOptions {
  /** Only these credentials are accepted (else 535). */
  readonly auth?: { user: string; pass: string };
  /**
   * A slow server: every reply (greeting, EHLO, MAIL, RCPT, DATA, end of data, QUIT) reaches the
   * client this many ms late. A TCP proxy in front of the server holds back each chunk it sends.
   */
  readonly replyDelayMs?: number;
  /** Advertise PIPELINING (default true); without it a client waits for every reply in turn. */
  readonly pipelining?: boolean;
  /** A hung server: it takes the whole message after DATA and then never answers. */
  readonly hangAfterData?: boolean;
  /** Runs when a whole message has arrived, before the server answers 250 (awaited). */
  readonly beforeAccept?: () => Promise<void> | void;
}

/** Starts the server on a random port. */
export async function startSmtp(options: TestSmtpOptions = {}): Promise<TestSmtp> {
  const mails: ReceivedMail[] = [];
  const sessions: SmtpSession[] = [];
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
          mails.push(
            parseMail(
              Buffer.concat(chunks).toString('utf8'),
              env.mailFrom === false ? '' : env.mailFrom.address,
              env.rcptTo.map((r) => r.address),
            ),
          );
          // A hung server keeps the message and never answers; the client must give up.
          if (options.hangAfterData === true) return;
          if (options.beforeAccept === undefined) callback();
          else
            void Promise.resolve()
              .then(options.beforeAccept)
              .then(
                () => callback(),
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
async function slowProxy(target: number, delayMs: number): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: target });
    sockets.add(client).add(upstream);
    let last = 0;
    upstream.on('data', (chunk: Buffer) => {
      const at = Math.max(Date.now() + delayMs, last);
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
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
