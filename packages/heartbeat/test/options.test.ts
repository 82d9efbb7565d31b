import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import {
  assertTaskId,
  HeartbeatEmitter,
  heartbeatKeys,
  healthOptionsSchema,
  heartbeatOptionsSchema,
  InvalidTaskIdError,
  isValidTaskId,
  scannerOptionsSchema,
  ServiceHealthReporter,
  type RedisClient,
} from '../src/index.js';

/** The slot-determining part of a key, as Redis Cluster computes it. */
function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  return close < 0 || close === open + 1 ? key : key.slice(open + 1, close);
}

const noRedis = {} as RedisClient;

describe('options', () => {
  it('has the documented defaults', () => {
    expect(heartbeatOptionsSchema.parse({})).toEqual({
      keyPrefix: 'ccat:',
      intervalMs: 4_000,
      timeoutMs: 12_000,
      commandTimeoutMs: 5_000,
      maxTasksPerScript: 5_000,
      removeOnNextBeat: false,
      registerOnNextBeat: false,
    });
    expect(scannerOptionsSchema.parse({})).toMatchObject({ keyPrefix: 'ccat:', batchSize: 1_000 });
    expect(healthOptionsSchema.parse({})).toMatchObject({ ttlMs: 90_000, refreshMs: 30_000 });
  });

  it('composes into an app config schema', () => {
    const parsed = heartbeatOptionsSchema.parse({ keyPrefix: 'prod:', intervalMs: 1000, timeoutMs: 60_000 });
    expect(parsed.timeoutMs).toBe(60_000);
  });

  it('throws a ConfigurationError naming path, expected and got', () => {
    let error: unknown;
    try {
      new HeartbeatEmitter({ redis: noRedis, intervalMs: -5, timeoutMs: 'soon' as unknown as number });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigurationError);
    const e = error as ConfigurationError;
    expect(e.retryable).toBe(false);
    expect(e.message).toContain('heartbeat.intervalMs: expected number >= 10, got -5');
    expect(e.message).toContain('heartbeat.timeoutMs: expected number, got "soon"');
    expect(e.context['problems']).toHaveLength(2);
  });

  it('rejects unknown options, timeouts below two beats and a refresh slower than the TTL', () => {
    expect(() => new HeartbeatEmitter({ redis: noRedis, intervalMS: 5 } as never)).toThrow(
      /heartbeat\.intervalMS: expected no such option/,
    );
    expect(() => new HeartbeatEmitter({ redis: noRedis, intervalMs: 1000, timeoutMs: 1500 })).toThrow(
      /heartbeat\.timeoutMs: expected timeoutMs >= 2 \* intervalMs \(2000\), got 1500/,
    );
    expect(
      () =>
        new ServiceHealthReporter({
          redis: noRedis,
          serviceType: 'worker',
          serviceName: 'w1',
          ttlMs: 1000,
          refreshMs: 1000,
        }),
    ).toThrow(/health\.refreshMs: expected refreshMs < ttlMs \(1000\), got 1000/);
    expect(
      () => new ServiceHealthReporter({ redis: noRedis, serviceType: 'bad:type', serviceName: 'w1' }),
    ).toThrow(ConfigurationError);
  });
});

describe('key layout', () => {
  it('puts every key of a deployment under one hash tag, after the literal prefix', () => {
    const k = heartbeatKeys();
    expect(k.namespace).toBe('ccat:{ccat}:');
    const all = [
      k.deadlines,
      k.progressDeadlines,
      k.details,
      k.progress,
      k.corrupt,
      k.services,
      k.health('worker', 'cologne-1'),
    ];
    expect(all.every((key) => key.startsWith('ccat:'))).toBe(true);
    expect(new Set(all.map(hashTagOf))).toEqual(new Set(['ccat']));
    expect(k.health('worker', 'cologne-1')).toBe('ccat:{ccat}:health:worker:cologne-1');
  });

  it('uses a prefix that already carries a tag as is, and a configured tag otherwise', () => {
    expect(heartbeatKeys({ keyPrefix: 'app:{ops}:' }).deadlines).toBe('app:{ops}:hb:deadlines');
    expect(heartbeatKeys({ keyPrefix: 'x:', hashTag: 'ccat-prod' }).deadlines).toBe(
      'x:{ccat-prod}:hb:deadlines',
    );
  });

  it('rejects prefixes whose braces would break the shared tag', () => {
    for (const keyPrefix of ['a{}b:', 'a{b', 'a}{b}:', 'has space:', '{a}{b}:']) {
      expect(() => heartbeatKeys({ keyPrefix }), keyPrefix).toThrow(ConfigurationError);
    }
    expect(() => heartbeatKeys({ keyPrefix: 'a:{t}:', hashTag: 'u' })).toThrow(/hashTag/);
  });
});

describe('task ids', () => {
  it("accepts the apps' `${operationType}:${id}:${attempt}` and similar", () => {
    for (const id of ['raw_data_package:42:3', 'data_transfer:9007199254740993:0', 'a', 'x/y@z+1=2-3.4']) {
      expect(isValidTaskId(id), id).toBe(true);
      expect(assertTaskId(id)).toBe(id);
    }
  });

  it('rejects empty, too long, whitespace, control and non-ASCII ids with a typed error', () => {
    for (const id of ['', 'a'.repeat(257), 'a b', 'a\nb', 'é', 'a{b}', 42, undefined]) {
      expect(isValidTaskId(id)).toBe(false);
      let error: unknown;
      try {
        assertTaskId(id);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidTaskIdError);
      expect((error as InvalidTaskIdError).code).toBe('INVALID_TASK_ID');
      expect((error as InvalidTaskIdError).retryable).toBe(false);
    }
  });
});
