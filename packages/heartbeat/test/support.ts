// Helpers shared by this package's tests: a private redis-server, a log capture, Redis time.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { waitFor } from '@ccat/test-support';
import { Redis } from 'ioredis';
import { pino, type Logger } from 'pino';

/** Redis server time in ms. */
export async function serverTime(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

export interface CapturedLogger {
  readonly logger: Logger;
  readonly lines: Record<string, unknown>[];
}

/** A pino logger that keeps its lines in memory. */
export function captureLogger(): CapturedLogger {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (msg: string) => void lines.push(JSON.parse(msg)) });
  return { logger, lines };
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  server.close();
  await once(server, 'close');
  return port;
}

/**
 * A redis-server of this test's own on a free loopback port (never the shared 6379), killed and
 * restarted by its PID. No persistence: a restart loses every key, as a crashed cache would.
 */
export class PrivateRedis {
  #child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const r = new PrivateRedis(await freePort());
    await r.spawn();
    return r;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

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
      {
        timeoutMs: 10_000,
        message: `redis-server (redis-server on PATH) did not start on port ${this.port}`,
      },
    );
  }

  /** SIGKILL by PID, and wait until it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    process.kill(child.pid, 'SIGKILL');
    await exited;
    this.#child = undefined;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.spawn();
  }
}
