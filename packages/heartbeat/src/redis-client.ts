import type { Cluster, Redis } from 'ioredis';

/**
 * The Redis connection this package works over: an ioredis client or cluster the caller owns. The
 * package defines its Lua scripts on it (`defineCommand`, names carry a digest of the script) and
 * never quits or disconnects it.
 */
export type RedisClient = Redis | Cluster;
