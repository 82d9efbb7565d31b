// Poison written into the monitor's Redis keys as a whole, not one member: a lease key without an
// expiry, and heartbeat keys of the wrong type. Before, every pass was skipped (lease) or failed with
// WRONGTYPE before reconciliation, forever; now the lease is given an expiry, the key is moved aside,
// the monitor says so at ERROR, and the dead task's row is recovered.
import { readOperation } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { heartbeatKeys, type HeartbeatKeys } from '@ccat/heartbeat';
import { waitFor } from '@ccat/test-support';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { describe, expect } from 'vitest';
import { monitorLeaseKey } from '../src/index.js';
import { monitorTest } from './support/monitor-fixture.js';

const LIVENESS_MS = 3000;
const it = monitorTest('mon_pkeys');
let n = 0;

type Poison = (
  redis: Redis,
  keys: HeartbeatKeys,
  keyPrefix: string,
  member: string,
  now: number,
) => Promise<unknown>;

const cases: [string, boolean, Poison][] = [
  // name, whether the dead task keeps a (valid, expired) member, the poison
  ['the lease key set without a TTL', true, (redis, _k, p) => redis.set(monitorLeaseKey(p), 'stale-owner')],
  ['the lease key is a hash', true, (redis, _k, p) => redis.hset(monitorLeaseKey(p), 'x', '1')],
  ['the deadlines key is a string', false, (redis, k) => redis.set(k.deadlines, 'garbage')],
  ['the details key is a string', true, (redis, k) => redis.set(k.details, 'garbage')],
  ['the progress key is a string', true, (redis, k) => redis.set(k.progress, 'garbage')],
  [
    'the corrupt key is a string and an invalid member is due',
    true,
    async (redis, k, _p, _m, now) => {
      await redis.set(k.corrupt, 'garbage');
      await redis.zadd(k.deadlines, now - 5000, 'bad member with spaces');
    },
  ],
];

describe('poison keys', () => {
  for (const [name, withMember, poison] of cases) {
    it(`a dead task is recovered when ${name}`, async ({
      setup: { prefix, database, locations, redis, monitor },
    }) => {
      const keyPrefix = `${prefix}${++n}:`;
      const lines: { msg: string; level: number; [k: string]: unknown }[] = [];
      const logger = pino({ level: 'debug' }, { write: (m: string) => void lines.push(JSON.parse(m)) });
      const m = monitor(
        {
          keyPrefix,
          monitor: { livenessTimeoutMs: LIVENESS_MS, heartbeatIntervalMs: 1000, loopIntervalMs: 2000 },
        },
        { monitorId: 'pkeys-monitor', logger },
      );
      const id = await seedOperation(database.db, locations, 'unpack', {
        status: 'in_progress',
        lastSeenAgoS: 60,
        claimedBy: 'dead-worker',
      });
      const member = `unpack:${id}:0`;
      const keys = heartbeatKeys({ keyPrefix });
      const [s, us] = await redis.time();
      const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
      if (withMember) await redis.zadd(keys.deadlines, now - 1000, member);
      await poison(redis, keys, keyPrefix, member, now);
      try {
        m.start();
        await waitFor(async () => (await readOperation(database.db, 'unpack', id))?.status === 'pending', {
          timeoutMs: 6 * LIVENESS_MS,
          message: 'dead row recovered',
        });
      } finally {
        await m.close();
        const worst = lines
          .filter((l) => l.level >= 40)
          .map((l) => `${l.level} ${l.msg} ${JSON.stringify(l['err'] ?? '')}`);
        console.log(`${name}: ${lines.length} lines; warn+: ${worst.length}; first: ${worst[0] ?? '-'}`);
      }
      expect(lines.some((l) => l.level >= 50)).toBe(true);
    }, 40_000);
  }
});
