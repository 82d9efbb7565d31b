// What the demo owns for its run: a database of its own (created and dropped), a Redis key prefix of
// its own (deleted), a local SMTP server (slow or hanging on demand), a temporary directory for the
// data locations and the process logs, and the environment of its child processes. A private
// redis-server or PostgreSQL cluster, when chaos or the fault suite needs one, is @ccat/test-support's
// PrivateRedis / PrivatePostgres.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '@ccat/test-support';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';

/** The URL with its password replaced, for anything printed: the CLI's one `redactUrl`. */
export { redactUrl } from '../cli/redact.js';

/**
 * The variables of the caller's environment a demo child needs to run at all: where programs are,
 * the home directory, language and time zone, the temporary directory, Node's own options. Nothing
 * else passes: the apps read DATABASE_URL, DATABASE_SCHEMA, REDIS_URL, SMTP_PASSWORD, SLACK_TOKEN
 * and every CCAT_ variable over their config file, so a caller's deployment settings would point the
 * demo's fault-injecting workers at that deployment (issue 11, item 9).
 */
export const CHILD_BASE_VARIABLES = [
  'PATH',
  'HOME',
  'LANG',
  'LC_ALL',
  'TZ',
  'TMPDIR',
  'NODE_OPTIONS',
] as const;

/**
 * A demo child's environment, built from scratch: the {@link CHILD_BASE_VARIABLES} the caller has,
 * plus `own` (the child's own settings, e.g. a Slack token the demo chose to pass). Never the
 * caller's configuration variables.
 */
export function childEnvironment(
  caller: Readonly<Record<string, string | undefined>>,
  own: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of CHILD_BASE_VARIABLES) {
    const value = caller[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...own };
}

/**
 * The caller's variables that would configure a worker or monitor (and the test helpers) if they
 * were passed on, sorted: the demo says it ignores them, so nobody wonders whether they applied.
 */
export function ignoredCallerVariables(caller: Readonly<Record<string, string | undefined>>): string[] {
  return Object.keys(caller)
    .filter(
      (k) =>
        caller[k] !== undefined &&
        (/^(CCAT_|TEST_)/.test(k) ||
          ['DATABASE_URL', 'DATABASE_SCHEMA', 'REDIS_URL', 'SMTP_PASSWORD', 'SLACK_TOKEN'].includes(k)),
    )
    .sort();
}

/** A database the demo created for itself; `drop()` removes it, closing any connection still open. */
export interface DemoDatabase {
  readonly url: string;
  readonly name: string;
  drop(): Promise<void>;
}

/** Creates `ccat_demo_<pid>_<random>` next to the database DATABASE_URL names. */
export async function createDemoDatabase(adminUrl: string): Promise<DemoDatabase> {
  const name = `ccat_demo_${process.pid}_${randomBytes(3).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    name,
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Terminates every backend connected to `database` except our own: "dropped PostgreSQL connections". */
export async function dropConnections(adminUrl: string, database: string): Promise<number> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const r = await c.query<{ n: number }>(
      `SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
      [database],
    );
    return r.rows[0]?.n ?? 0;
  } finally {
    await c.end();
  }
}

/** A mail the local SMTP server accepted. */
export interface ReceivedMail {
  readonly to: readonly string[];
  readonly subject: string;
  readonly body: string;
  /** The `X-CCAT-Notification-Id` header the email channel sets: the outbox row the mail delivers. */
  readonly notificationId: string | undefined;
  /** When the server accepted it (ms since the epoch). */
  readonly acceptedAt: number;
}

/**
 * How the local SMTP server behaves: `normal`; `slow`, every hook reply (the greeting, MAIL FROM,
 * RCPT TO and the end of DATA) sent after `replyDelayMs`; `hang`, the message after DATA is read to
 * its end and never answered (the client waits until its socket timeout, nothing is accepted).
 */
export type SmtpMode = 'normal' | 'slow' | 'hang';

/** The local SMTP server of a demo, soak or fault-suite run (see {@link startLocalSmtp}). */
export interface LocalSmtp {
  readonly port: number;
  /** Every mail the server accepted (answered 250 after DATA), in order. */
  readonly mails: ReceivedMail[];
  /** Messages read to their end in `hang` mode and never answered: the client was not told they arrived. */
  readonly unanswered: number;
  /** The current behaviour; see {@link SmtpMode}. */
  mode: SmtpMode;
  /** The delay of each reply in `slow` mode, in ms (default 700). */
  replyDelayMs: number;
  /** Stops accepting connections (an outage) until start(); open sessions are cut after 1 s. */
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

function decodeSubject(raw: string): string {
  const m = /^subject:(.*(?:\r\n[ \t].*)*)/im.exec(raw);
  const folded = (m?.[1] ?? '').replace(/\r\n[ \t]+/g, ' ').trim();
  return folded.replace(
    /=\?([^?]+)\?([QqBb])\?([^?]*)\?=\s*/g,
    (_m, _cs: string, enc: string, data: string) =>
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

function headerValue(head: string, name: string): string | undefined {
  const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head);
  return m?.[1]?.trim();
}

/** An SMTP server on 127.0.0.1 that keeps every mail it accepts, slow or hanging on demand. */
export async function startLocalSmtp(): Promise<LocalSmtp> {
  const mails: ReceivedMail[] = [];
  const port = await freePort();
  let server: SMTPServer | undefined;
  const state = { mode: 'normal' as SmtpMode, replyDelayMs: 700, unanswered: 0 };
  const reply = (callback: () => void) => {
    if (state.mode === 'slow') setTimeout(callback, state.replyDelayMs);
    else callback();
  };
  const start = async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      closeTimeout: 1000,
      onConnect: (_session, callback) => reply(() => callback()),
      onMailFrom: (_address, _session, callback) => reply(() => callback()),
      onRcptTo: (_address, _session, callback) => reply(() => callback()),
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          if (state.mode === 'hang') {
            state.unanswered++;
            return; // DATA was accepted (354); the final answer never comes
          }
          reply(() => {
            const raw = Buffer.concat(chunks).toString('utf8');
            const split = raw.indexOf('\r\n\r\n');
            const head = raw.slice(0, split);
            mails.push({
              to: session.envelope.rcptTo.map((r) => r.address),
              subject: decodeSubject(head),
              body: raw.slice(split + 4),
              notificationId: headerValue(head, 'x-ccat-notification-id'),
              acceptedAt: Date.now(),
            });
            callback();
          });
        });
      },
    });
    server.on('error', () => undefined); // a client's broken connection is not the server's end
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject);
      server!.listen(port, '127.0.0.1', () => resolve());
    });
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      if (server === undefined) return resolve();
      const s = server;
      server = undefined;
      s.close(() => resolve());
    });
  await start();
  return {
    port,
    mails,
    get unanswered() {
      return state.unanswered;
    },
    get mode() {
      return state.mode;
    },
    set mode(m: SmtpMode) {
      state.mode = m;
    },
    get replyDelayMs() {
      return state.replyDelayMs;
    },
    set replyDelayMs(ms: number) {
      state.replyDelayMs = ms;
    },
    stop,
    start,
    close: stop,
  };
}

/** A temporary directory `ccat-demo-*` for data locations and logs; `remove()` deletes it and all inside. */
export async function makeWorkDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'ccat-demo-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
