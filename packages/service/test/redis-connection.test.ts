import { createServer } from 'node:net';
import { Cluster, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createRedisConnection, describeRedis, keyPrefixSchema, redisConfigSchema } from '../src/index.js';

const messages = (input: unknown) => {
  const r = redisConfigSchema.safeParse(input);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('redis configuration', () => {
  it('defaults to the loopback URL when nothing is set', () => {
    expect(redisConfigSchema.parse(undefined)).toEqual({ url: 'redis://127.0.0.1:6379' });
  });

  it('takes sentinels with a master name, and cluster nodes, without a URL', () => {
    expect(
      redisConfigSchema.parse({ sentinels: ['10.0.0.5:26379', '[::1]:26380'], sentinelName: 'ccat' }),
    ).toEqual({ sentinels: ['10.0.0.5:26379', '[::1]:26380'], sentinelName: 'ccat' });
    expect(redisConfigSchema.parse({ cluster: ['127.0.0.1:7000', 'redis://127.0.0.1:7001'] })).toEqual({
      cluster: ['127.0.0.1:7000', 'redis://127.0.0.1:7001'],
    });
  });

  it('refuses two forms at once, naming both', () => {
    expect(messages({ url: 'redis://127.0.0.1:6379', cluster: ['127.0.0.1:7000'] })).toEqual([
      'cluster: exactly one of url, sentinels and cluster may be set, not url and cluster (REDIS_URL sets url)',
    ]);
  });

  it('refuses sentinels without a master name, and sentinel options without sentinels', () => {
    expect(messages({ sentinels: ['127.0.0.1:26379'] })).toEqual([
      'sentinelName: required with sentinels: the master name the sentinels monitor',
    ]);
    expect(messages({ sentinelName: 'ccat', sentinelPassword: 'pw' })).toEqual([
      'sentinelName: only with sentinels',
      'sentinelPassword: only with sentinels',
    ]);
  });

  it('refuses a password beside a URL, and bad host:port entries, without repeating them', () => {
    expect(messages({ url: 'redis://127.0.0.1:6379', password: 'hunter2hunter2' })).toEqual([
      'password: only with sentinels or cluster: with url, write it in the URL',
    ]);
    const bad = messages({ sentinels: ['secret-host', '127.0.0.1:99999'], sentinelName: 'm' });
    expect(bad).toEqual([
      'sentinels.0: expected host:port, e.g. 10.0.0.5:26379',
      'sentinels.1: port out of range: must be from 1 to 65535',
    ]);
    expect(bad.join(' ')).not.toContain('secret-host');
    expect(messages({ cluster: [] })[0]).toMatch(/^cluster: /);
  });

  it('describes where it connects without passwords', () => {
    // One way of hiding a URL's password everywhere (redactUrl, the one censor `[REDACTED]`).
    expect(describeRedis({ url: 'redis://:pw@10.0.0.1:6379/2' })).toBe('redis://:[REDACTED]@10.0.0.1:6379/2');
    expect(describeRedis({ url: 'redis://u:p@ss@10.0.0.1' })).toBe('redis://u:[REDACTED]@10.0.0.1');
    expect(describeRedis({ cluster: ['redis://u:pw@n1:7000', 'n2:7001'] })).toBe(
      'Cluster redis://u:[REDACTED]@n1:7000, n2:7001',
    );
    expect(describeRedis({ sentinels: ['s1:26379'], sentinelName: 'ccat', password: 'pw' })).toBe(
      'Sentinel master ccat via s1:26379',
    );
  });
});

describe('createRedisConnection', () => {
  it('makes a Redis for a URL or sentinels and a Cluster for cluster nodes, with the options given', () => {
    const lazy = { lazyConnect: true, maxRetriesPerRequest: null, connectionName: 't' } as const;
    const byUrl = createRedisConnection({ url: 'redis://127.0.0.1:6390/3' }, lazy);
    const bySentinel = createRedisConnection(
      { sentinels: ['127.0.0.1:26390'], sentinelName: 'ccat', password: 'pw', sentinelPassword: 'spw' },
      lazy,
    );
    const byCluster = createRedisConnection({ cluster: ['127.0.0.1:7390'], password: 'pw' }, lazy);
    try {
      expect(byUrl).toBeInstanceOf(Redis);
      expect((byUrl as Redis).options).toMatchObject({ port: 6390, db: 3, maxRetriesPerRequest: null });
      expect(bySentinel).toBeInstanceOf(Redis);
      expect((bySentinel as Redis).options).toMatchObject({
        sentinels: [{ host: '127.0.0.1', port: 26390 }],
        name: 'ccat',
        password: 'pw',
        sentinelPassword: 'spw',
        connectionName: 't',
      });
      expect(byCluster).toBeInstanceOf(Cluster);
      expect((byCluster as Cluster).options.redisOptions).toMatchObject({
        password: 'pw',
        maxRetriesPerRequest: null,
        connectionName: 't',
      });
    } finally {
      for (const c of [byUrl, bySentinel, byCluster]) c.disconnect();
    }
  });
});

describe('keyPrefix', () => {
  it('takes one Redis Cluster {hash tag} and refuses two, an empty one or whitespace', () => {
    expect(keyPrefixSchema.parse('ccat:')).toBe('ccat:');
    expect(keyPrefixSchema.parse('ccat:{ccat}:')).toBe('ccat:{ccat}:');
    for (const bad of ['a{b}{c}:', 'a{}:', 'a{b:', 'a b:'])
      expect(keyPrefixSchema.safeParse(bad).success, bad).toBe(false);
  });
});

describe('createRedisConnection with sentinels that do not answer', () => {
  it('gives up when the retryStrategy says so, instead of asking forever', async () => {
    // A port nothing listens on: a server bound and closed again.
    const server = createServer().listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    await new Promise((r) => server.close(r));
    const client = createRedisConnection(
      { sentinels: [`127.0.0.1:${port}`], sentinelName: 'ccat' },
      { lazyConnect: true, retryStrategy: () => null, connectTimeout: 1_000, maxRetriesPerRequest: 1 },
    );
    client.on('error', () => undefined);
    const started = Date.now();
    try {
      await expect(client.connect()).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      client.disconnect();
    }
  });
});
