// Helpers shared by this package's tests: Redis server time.
import type { Redis } from 'ioredis';

/** Redis server time in ms. */
export async function serverTime(redis: Redis): Promise<number> {
  const [s, us] = await redis.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}
