// A private PgBouncer (Debian's `pgbouncer`) for tests: its own port, config in a temporary
// directory, trust auth, transaction pool mode, in front of the shared PostgreSQL.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, postgresUser, waitFor } from '@ccat/test-support';
import pg from 'pg';

// Debian installs it in /usr/sbin, which is not on every user's PATH.
const PGBOUNCER = existsSync('/usr/sbin/pgbouncer') ? '/usr/sbin/pgbouncer' : 'pgbouncer';

export class PrivatePgBouncer implements AsyncDisposable {
  #stderr = '';
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.on('data', (b: Buffer) => (this.#stderr = (this.#stderr + b.toString()).slice(-4000)));
    child.on('error', (e) => (this.#stderr += `\n${e.message} (install Debian's "pgbouncer" package)`));
  }

  /**
   * Starts one in transaction mode in front of `upstream` (a postgres:// URL: host, port, user and
   * database are taken from it); resolves once a query through it answers (20 s at most). Its port
   * is a free one, or `settings.listen_port`.
   */
  static async start(upstream: string, settings: Record<string, string> = {}): Promise<PrivatePgBouncer> {
    const u = new URL(upstream);
    const port = settings['listen_port'] !== undefined ? Number(settings['listen_port']) : await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'ccat-pgbouncer-'));
    const user = decodeURIComponent(u.username || 'postgres');
    const database = u.pathname.slice(1);
    await writeFile(join(dir, 'userlist.txt'), `"${user}" ""\n`);
    const ini = {
      listen_addr: '127.0.0.1',
      listen_port: String(port),
      unix_socket_dir: '',
      auth_type: 'trust',
      auth_file: join(dir, 'userlist.txt'),
      pool_mode: 'transaction',
      default_pool_size: '4',
      max_client_conn: '200',
      server_reset_query: '',
      ...settings,
    };
    await writeFile(
      join(dir, 'pgbouncer.ini'),
      [
        '[databases]',
        `${database} = host=${u.hostname} port=${u.port || '5432'} dbname=${database} user=${user}`,
        '[pgbouncer]',
        ...Object.entries(ini).map(([k, v]) => `${k} = ${v}`),
        '',
      ].join('\n'),
    );
    // PgBouncer refuses to run as root: as root, it runs as the postgres user, which must read its files.
    const owner = postgresUser();
    if (owner !== undefined)
      for (const path of [dir, join(dir, 'userlist.txt'), join(dir, 'pgbouncer.ini')])
        await chown(path, owner.uid, owner.gid);
    const child = spawn(PGBOUNCER, [join(dir, 'pgbouncer.ini')], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...(owner !== undefined && { uid: owner.uid, gid: owner.gid }),
    });
    const bouncer = new PrivatePgBouncer(port, dir, child);
    const url = bouncer.url(database, user);
    await waitFor(
      async () => {
        const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
        client.on('error', () => undefined);
        try {
          await client.connect();
          await client.query('SELECT 1');
          return true;
        } catch {
          return false;
        } finally {
          await client.end().catch(() => undefined);
        }
      },
      { timeoutMs: 20_000, intervalMs: 200, message: `PgBouncer did not start: ${bouncer.stderr()}` },
    );
    return bouncer;
  }

  /** `postgres://user@127.0.0.1:<port>/<database>`. */
  url(database: string, user = 'postgres'): string {
    return `postgres://${encodeURIComponent(user)}@127.0.0.1:${this.port}/${database}`;
  }

  stderr(): string {
    return this.#stderr;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}
