import type { RedisClient } from './redis-client.js';
import { runScript } from './internal/scripts.js';

/**
 * Releases a short Redis lease (a key whose value is its holder's token, taken with `SET … NX PX`)
 * only if `token` still holds it, atomically (a Lua compare-and-delete from this package's script
 * registry). A lease that lapsed and was taken by another holder is left alone.
 * Resolves true when released; rejects when Redis fails.
 */
export async function releaseLease(redis: RedisClient, key: string, token: string): Promise<boolean> {
  return (await runScript(redis, 'releaseLease', [key], [token])) === 1;
}
