// Over 300 lines: the private Redis and PostgreSQL share the port, PID and cleanup discipline.
// Servers of a test's own: a redis-server and a PostgreSQL cluster on free loopback ports, never the
// shared ones on 6379 and 5432. A test that kills, restarts, pauses or stops a server uses these, by
// the PID it started, and stops them at the end.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, chownSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { waitFor } from './wait.js';

/**
 * A TCP port free on every interface, from 20000-31999 (a race with another process is possible but
 * rare). `clusterBus`: also its Redis Cluster bus port (port + 10000) free, so from 20000-22767.
 */
export async function freePort(options: { clusterBus?: boolean } = {}): Promise<number> {
  // Below the kernel's ephemeral range (32768-60999 on Linux): a port the kernel handed out and took
  // back is soon some outgoing connection's local port, and the process given it failed to listen
  // (EADDRINUSE) when the machine was busy. A cluster node listens on port + 10000 too, which must
  // stay below that range as well (CI: a node given 28654 never answered, its bus port 38654).
  const span = options.clusterBus === true ? 2_768 : 12_000;
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * span);
    if (!(await canListen(port))) continue;
    if (options.clusterBus === true && !(await canListen(port + 10_000))) continue;
    return port;
  }
}

async function canListen(port: number): Promise<boolean> {
  const server = createServer();
  server.listen(port, '0.0.0.0');
  const ok = await new Promise<boolean>((resolve) => {
    server.once('listening', () => resolve(true));
    server.once('error', () => resolve(false));
  });
  if (!ok) return false;
  server.close();
  await once(server, 'close');
  return true;
}

function alive(child: ChildProcess | undefined): child is ChildProcess & { pid: number } {
  return child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

async function signalAndWait(child: ChildProcess | undefined, signal: NodeJS.Signals): Promise<void> {
  if (!alive(child)) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, signal);
  await exited;
}

/**
 * A redis-server of this test's own on a free loopback port, killed and restarted by its PID. No
 * persistence: a restart loses every key, as a crashed cache would. `redis-server` must be on PATH.
 */
export class PrivateRedis implements AsyncDisposable {
  #child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  /** Starts one on a free port; resolves once it answers PING (10 s at most). */
  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.spawn();
    return r;
  }

  /** `redis://127.0.0.1:<port>`. */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the server (again) on the same port. */
  async spawn(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.#child = child;
    child.on('error', () => undefined);
    await waitFor(
      async () => {
        const probe = new Redis({
          port: this.port,
          host: '127.0.0.1',
          lazyConnect: true,
          retryStrategy: () => null,
        });
        probe.on('error', () => undefined);
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } finally {
          probe.disconnect();
        }
      },
      { timeoutMs: 10_000, message: `redis-server (on PATH) did not start on port ${this.port}` },
    );
  }

  /** SIGKILL by PID, and wait until it is gone. */
  async kill(): Promise<void> {
    await signalAndWait(this.#child, 'SIGKILL');
    this.#child = undefined;
  }

  /** SIGSTOP / SIGCONT: the server hangs without closing its connections. */
  pause(): void {
    if (alive(this.#child)) process.kill(this.#child.pid, 'SIGSTOP');
  }
  resume(): void {
    if (alive(this.#child)) process.kill(this.#child.pid, 'SIGCONT');
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }

  /** Stops it for good (SIGCONT first, in case it was paused). */
  async stop(): Promise<void> {
    this.resume();
    await this.kill();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

function postgresBinDir(): string {
  const root = '/usr/lib/postgresql';
  let versions: string[] = [];
  try {
    versions = readdirSync(root).sort((a, b) => Number(b) - Number(a));
  } catch {
    // handled below
  }
  const v = versions[0];
  if (v === undefined)
    throw new Error(`no PostgreSQL server binaries under ${root} (apt-get install postgresql)`);
  return join(root, v, 'bin');
}

/**
 * The user to run a server as that refuses root (postgres, PgBouncer): the `postgres` user when
 * running as root, else undefined (run as ourselves). Throws when root and there is no such user.
 */
export function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined; // not root: run as ourselves
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0)
    throw new Error('running as root but there is no postgres user to run initdb as');
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

/**
 * A PostgreSQL cluster of this test's own: `initdb` into a temporary directory (as the `postgres` user
 * when run as root; trust auth, fsync off) and `postgres` started directly, so the test holds its PID.
 * Listens on 127.0.0.1 at a free port; has the databases `postgres` and `test`. `restart('fast')`
 * is `pg_ctl restart -m fast` (SIGINT, then start again); `stop()` for a while and `start()` again
 * models an outage; `pause()` (SIGSTOP of the postmaster and every backend) a hung server.
 */
export class PrivatePostgres implements AsyncDisposable {
  #child: ChildProcess | undefined;
  readonly #bin: string;
  readonly #owner: { uid: number; gid: number } | undefined;

  private constructor(
    readonly port: number,
    readonly dataDir: string,
  ) {
    this.#bin = postgresBinDir();
    this.#owner = postgresUser();
  }

  /** initdb + start; resolves once `test` accepts connections (60 s at most). */
  static async start(): Promise<PrivatePostgres> {
    const dir = mkdtempSync(join(tmpdir(), 'ccat-pg-'));
    const p = new PrivatePostgres(await freePort(), join(dir, 'data'));
    if (p.#owner !== undefined) {
      chownSync(dir, p.#owner.uid, p.#owner.gid);
      chmodSync(dir, 0o700);
    }
    const init = spawnSync(
      join(p.#bin, 'initdb'),
      ['-D', p.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale=C'],
      { encoding: 'utf8', ...(p.#owner ?? {}) },
    );
    if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`);
    await p.spawn();
    const c = new pg.Client({ connectionString: p.urlFor('postgres') });
    await c.connect();
    try {
      await c.query('CREATE DATABASE test');
    } finally {
      await c.end();
    }
    return p;
  }

  /** `postgres://postgres@127.0.0.1:<port>/<database>` (default `test`). */
  urlFor(database = 'test'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  get url(): string {
    return this.urlFor('test');
  }

  /** The postmaster's PID while it runs. */
  get pid(): number | undefined {
    return alive(this.#child) ? this.#child.pid : undefined;
  }

  /** Starts the postmaster on the same data directory and port; resolves when it accepts connections. */
  async spawn(): Promise<void> {
    const child = spawn(
      join(this.#bin, 'postgres'),
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${join(this.dataDir, '..')}`,
        '-c',
        'fsync=off',
        '-c',
        'synchronous_commit=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'max_connections=200',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], ...(this.#owner ?? {}) },
    );
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.on('error', () => undefined);
    this.#child = child;
    await waitFor(
      async () => {
        if (!alive(child)) throw new Error(`postgres exited: ${stderr.slice(-500)}`);
        const c = new pg.Client({ connectionString: this.urlFor('postgres'), connectionTimeoutMillis: 1000 });
        c.on('error', () => undefined);
        try {
          await c.connect();
          await c.query('SELECT 1');
          return true;
        } finally {
          await c.end().catch(() => undefined);
        }
      },
      { timeoutMs: 60_000, intervalMs: 100, message: `private postgres did not start on port ${this.port}` },
    );
  }

  /** Fast shutdown (SIGINT: backends terminated, no waiting for clients), waits until it is gone. */
  async stop(): Promise<void> {
    this.resume();
    await signalAndWait(this.#child, 'SIGINT');
    this.#child = undefined;
  }

  /** `pg_ctl restart -m fast`. */
  async restart(): Promise<void> {
    await this.stop();
    await this.spawn();
  }

  /** Terminates every client backend of `database` (as `pg_terminate_backend` does); returns how many. */
  async terminateBackends(database = 'test'): Promise<number> {
    const c = new pg.Client({ connectionString: this.urlFor('postgres'), connectionTimeoutMillis: 2000 });
    c.on('error', () => undefined);
    await c.connect();
    try {
      const r = await c.query<{ n: string }>(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n
           FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
        [database],
      );
      return Number(r.rows[0]?.n ?? 0);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  #processGroup(): number[] {
    const pid = this.pid;
    if (pid === undefined) return [];
    const r = spawnSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' });
    return [pid, ...r.stdout.split('\n').filter(Boolean).map(Number)];
  }

  /** SIGSTOP the postmaster and all its backends: every query hangs, no connection closes. */
  pause(): void {
    for (const pid of this.#processGroup()) process.kill(pid, 'SIGSTOP');
  }

  /** SIGCONT what `pause()` stopped. */
  resume(): void {
    for (const pid of this.#processGroup()) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // gone meanwhile
      }
    }
  }

  /** Stops the server and removes its data directory. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(join(this.dataDir, '..'), { recursive: true, force: true });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}
