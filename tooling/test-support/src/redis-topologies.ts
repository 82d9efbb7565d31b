// Private Redis topologies for the Sentinel and Cluster tests: redis-server and redis-sentinel
// processes of the test's own on free loopback ports, in a temporary directory, stopped by the PIDs
// this file started. The shared Redis on 6379 is never touched.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './private-servers.js';
import { waitFor } from './wait.js';
import { Redis } from 'ioredis';

const run = promisify(execFile);

/** One server process this file started. */
export class ServerProcess {
  readonly #child: ChildProcess;
  constructor(
    readonly port: number,
    command: string,
    args: readonly string[],
  ) {
    this.#child = spawn(command, args, { stdio: 'ignore' });
    this.#child.on('error', () => undefined);
  }
  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }
  /** Sends `signal` by PID and waits until the process is gone. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running || this.#child.pid === undefined) return;
    const exited = once(this.#child, 'exit');
    process.kill(this.#child.pid, signal);
    await exited;
  }
}

/** Asks `port` one command; null when it does not answer. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return await probe.call(args[0]!, ...args.slice(1));
  } catch {
    return null;
  } finally {
    probe.disconnect();
  }
}

async function answers(port: number): Promise<void> {
  await waitFor(async () => (await ask(port, 'PING')) === 'PONG', {
    timeoutMs: 10_000,
    message: `a private server (redis-server or redis-sentinel on PATH) did not start on port ${port}`,
  });
}

const serverArgs = (port: number, dir: string) => [
  '--port',
  String(port),
  '--bind',
  '127.0.0.1',
  '--save',
  '',
  '--appendonly',
  'no',
  '--dir',
  dir,
];

/** A 3-primary Redis Cluster (no replicas) on free loopback ports. */
export class PrivateRedisCluster implements AsyncDisposable {
  private constructor(
    readonly dir: string,
    readonly servers: readonly ServerProcess[],
  ) {}

  /** Starts `primaries` (default 3) nodes, creates the cluster and waits until every node says ok. */
  static async start(primaries = 3): Promise<PrivateRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'ccat-cluster-'));
    const servers: ServerProcess[] = [];
    const cluster = new PrivateRedisCluster(dir, servers);
    try {
      for (let i = 0; i < primaries; i++) {
        const port = await freePort({ clusterBus: true });
        servers.push(
          new ServerProcess(port, 'redis-server', [
            ...serverArgs(port, dir),
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            `nodes-${port}.conf`,
            '--cluster-node-timeout',
            '5000',
          ]),
        );
        await answers(port);
      }
      await run(
        'redis-cli',
        ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-yes'],
        { timeout: 30_000 },
      );
      await waitFor(
        async () => {
          for (const s of servers)
            if (!String(await ask(s.port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
          return true;
        },
        { timeoutMs: 30_000, message: 'the private cluster to reach cluster_state:ok' },
      );
      return cluster;
    } catch (e) {
      await cluster[Symbol.asyncDispose]();
      throw e;
    }
  }

  /** The nodes as `host:port`, for `redis.cluster`. */
  get nodes(): string[] {
    return this.servers.map((s) => `127.0.0.1:${s.port}`);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const s of this.servers) await s.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** One primary, one replica and three sentinels monitoring them as `name`, on free loopback ports. */
export class PrivateRedisSentinel implements AsyncDisposable {
  readonly sentinels: ServerProcess[] = [];
  /** Every process started, in order: disposal stops each one. */
  readonly #started: ServerProcess[] = [];
  private constructor(
    readonly dir: string,
    readonly name: string,
  ) {}

  /**
   * Starts them and waits until every sentinel knows the primary, its replica and the two other
   * sentinels. `downAfterMs` (default 1000) and a 3 s failover timeout keep a failover to seconds.
   */
  static async start(name = 'ccat', downAfterMs = 1000): Promise<PrivateRedisSentinel> {
    const dir = await mkdtemp(join(tmpdir(), 'ccat-sentinel-'));
    const topology = new PrivateRedisSentinel(dir, name);
    const started = (p: ServerProcess) => {
      topology.#started.push(p);
      return answers(p.port);
    };
    try {
      const primaryPort = await freePort();
      await started(new ServerProcess(primaryPort, 'redis-server', serverArgs(primaryPort, dir)));
      const replicaPort = await freePort();
      await started(
        new ServerProcess(replicaPort, 'redis-server', [
          ...serverArgs(replicaPort, dir),
          '--replicaof',
          '127.0.0.1',
          String(primaryPort),
        ]),
      );
      for (let i = 0; i < 3; i++) {
        const port = await freePort();
        const conf = join(dir, `sentinel-${port}.conf`);
        await writeFile(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
            `sentinel down-after-milliseconds ${name} ${downAfterMs}`,
            `sentinel failover-timeout ${name} 3000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        );
        const sentinel = new ServerProcess(port, 'redis-sentinel', [conf]);
        topology.sentinels.push(sentinel);
        await started(sentinel);
      }
      await waitFor(
        async () => {
          for (const s of topology.sentinels) {
            const info = String(await ask(s.port, 'INFO', 'sentinel'));
            if (!/slaves=1,sentinels=3/.test(info)) return false;
          }
          return true;
        },
        { timeoutMs: 30_000, message: 'the sentinels to see the replica and each other' },
      );
      return topology;
    } catch (e) {
      await topology[Symbol.asyncDispose]();
      throw e;
    }
  }

  /** The data servers (primary first, as started; the sentinels may have swapped their roles since). */
  get servers(): ServerProcess[] {
    return this.#started.filter((p) => !this.sentinels.includes(p));
  }

  /** The sentinels as `host:port`, for `redis.sentinels`. */
  get addresses(): string[] {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`);
  }

  /** The port the sentinels name as primary now (null when none answers). */
  async primaryPort(): Promise<number | null> {
    for (const s of this.sentinels) {
      const reply = await ask(s.port, 'SENTINEL', 'get-master-addr-by-name', this.name);
      if (Array.isArray(reply) && reply.length === 2) return Number(reply[1]);
    }
    return null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const s of [...this.#started].reverse()) await s.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
