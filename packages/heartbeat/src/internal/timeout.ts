import { RedisConnectionError } from '@ccat/errors';

/**
 * Resolves like `promise`, or rejects with a retryable `RedisConnectionError` (code REDIS_TIMEOUT)
 * after `ms`. ioredis keeps commands in its offline queue while disconnected; this bounds how long
 * a beat, a registration or a close waits for them. The command itself may still run later, so its
 * own rejection is swallowed here rather than surfacing as unhandled.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  void promise.catch(() => undefined);
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RedisConnectionError(`${what}: no answer from Redis within ${ms} ms`, {
            code: 'REDIS_TIMEOUT',
            context: { timeoutMs: ms },
          }),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
