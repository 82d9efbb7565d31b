// Helpers shared by this package's tests: a private redis-server, a log capture, Redis time.
import type { Redis } from 'ioredis';
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

export { PrivateRedis } from '@ccat/test-support';
