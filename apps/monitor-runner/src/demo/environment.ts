// What the demo owns for its run: a database of its own (created and dropped), a Redis key prefix of
// its own (deleted), a private redis-server when chaos wants to restart one, a local SMTP server, and
// a temporary directory for the data locations and the process logs.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { SMTPServer } from 'smtp-server';

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The URL with its password replaced, for anything printed: the CLI's one `redactUrl`. */
export { redactUrl } from '../cli/redact.js';

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

export interface PrivateRedis {
  readonly url: string;
  readonly pid: number | undefined;
  /** Kills it (SIGKILL: it keeps nothing on disk, so every key is gone) and starts it again on the same port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server of our own on a free loopback port, for the chaos soak's restart. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const url = `redis://127.0.0.1:${port}`;
  const start = async () => {
    child = spawn(
      'redis-server',
      [
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--maxmemory-policy',
        'noeviction',
      ],
      {
        stdio: 'ignore',
      },
    );
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    for (let i = 0; i < 100; i++) {
      try {
        await probe.connect();
        await probe.ping();
        probe.disconnect();
        return;
      } catch {
        probe.disconnect();
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    throw new Error(`redis-server on port ${port} did not start (is redis-server installed?)`);
  };
  const stop = async () => {
    const c = child;
    if (c === undefined || c.exitCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    c.kill('SIGKILL');
    await exited;
  };
  await start();
  return {
    url,
    get pid() {
      return child?.pid;
    },
    async restart() {
      await stop();
      await start();
    },
    stop,
  };
}

export interface ReceivedMail {
  readonly to: readonly string[];
  readonly subject: string;
  readonly body: string;
}

export interface LocalSmtp {
  readonly port: number;
  readonly mails: ReceivedMail[];
  /** Stops accepting connections (an outage) until start(). */
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

/** An SMTP server on 127.0.0.1 that keeps every mail it receives. */
export async function startLocalSmtp(): Promise<LocalSmtp> {
  const mails: ReceivedMail[] = [];
  const port = await freePort();
  let server: SMTPServer | undefined;
  const start = async () => {
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream, session, callback) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          const split = raw.indexOf('\r\n\r\n');
          mails.push({
            to: session.envelope.rcptTo.map((r) => r.address),
            subject: decodeSubject(raw.slice(0, split)),
            body: raw.slice(split + 4),
          });
          callback();
        });
      },
    });
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
  return { port, mails, stop, start, close: stop };
}

export async function makeWorkDir(): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), 'ccat-demo-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}
