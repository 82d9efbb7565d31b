import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../src/config.js';

const problems = (sources: Parameters<typeof loadWorkerConfig>[0]): string[] => {
  try {
    loadWorkerConfig(sources);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as Error).message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  return [];
};

describe('worker configuration', () => {
  it('has working defaults and takes the usual variables', () => {
    const c = loadWorkerConfig({
      env: { DATABASE_URL: 'postgres://u@db/x', REDIS_URL: 'redis://r:6379', CCAT_CONCURRENCY: '8' },
    });
    expect(c).toMatchObject({
      database: { url: 'postgres://u@db/x', schema: 'public' },
      redis: { url: 'redis://r:6379' },
      concurrency: 8,
      keyPrefix: 'ccat:',
    });
    expect(c.heartbeat).toMatchObject({
      intervalMs: 4_000,
      livenessTimeoutMs: 12_000,
      progressTimeoutMs: 3_600_000,
    });
  });

  it('refuses inconsistent liveness and progress bounds, also per type (issue 13)', () => {
    expect(
      problems({
        file: {
          heartbeat: {
            intervalMs: 1000,
            livenessTimeoutMs: 1500,
            progressTimeoutMs: 1000,
            operationTypes: { unpack: { progressTimeoutMs: 100 } },
          },
        },
      }),
    ).toEqual([
      'heartbeat.livenessTimeoutMs: must be at least 2 × heartbeat.intervalMs (2000), got 1500',
      'heartbeat.progressTimeoutMs: must be at least heartbeat.livenessTimeoutMs (1500), got 1000',
      'heartbeat.operationTypes.unpack.progressTimeoutMs: must be at least heartbeat.livenessTimeoutMs (1500), got 100',
    ]);
  });

  it("refuses heartbeat bounds past the emitter's (every task would run without a heartbeat)", () => {
    // Before, these were accepted and every registration failed: tasks ran unwatched by Redis and
    // reconciliation recovered them while alive.
    const refused = problems({
      file: {
        heartbeat: {
          intervalMs: 2 * 3_600_000,
          livenessTimeoutMs: 8 * 24 * 3_600_000,
          progressTimeoutMs: 8 * 24 * 3_600_000,
          operationTypes: { unpack: { progressTimeoutMs: 8 * 24 * 3_600_000 } },
        },
      },
    });
    for (const key of [
      'heartbeat.intervalMs',
      'heartbeat.livenessTimeoutMs',
      'heartbeat.progressTimeoutMs',
      'heartbeat.operationTypes.unpack.progressTimeoutMs',
    ])
      expect(refused.some((l) => l.startsWith(`${key}:`))).toBe(true);
    expect(problems({ file: { heartbeat: { progressTimeoutMs: 7 * 24 * 3_600_000 } } })).toEqual([]);
  });

  it('refuses the removed heartbeat.timeoutMs, saying what it became', () => {
    const p = problems({
      file: { heartbeat: { timeoutMs: 3_600_000, operationTypes: { unpack: { timeoutMs: 7_200_000 } } } },
    });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^heartbeat\.timeoutMs: removed: .*progressTimeoutMs.*livenessTimeoutMs/);
    expect(p[1]).toMatch(/^heartbeat\.operationTypes\.unpack\.timeoutMs: removed: /);
  });

  it('refuses per-type settings for unknown operation types (typos)', () => {
    const p = problems({
      file: { recovery: { operationTypes: { data_transfers: { maxRetries: 5 } } } },
      fileName: 'w.json',
    });
    expect(p).toHaveLength(1);
    expect(p[0]).toMatch(
      /^recovery\.operationTypes\.data_transfers: unknown operation type; expected one of raw_data_package, /,
    );
    expect(problems({ file: { recovery: { backoff: { baseMs: 1, maxMs: 2, jitter: 1 } } } })[0]).toMatch(
      /Unrecognized key: "jitter"/,
    );
  });

  it('refuses fault rules and transports it cannot run', () => {
    const p = problems({
      file: {
        faults: { enabled: true, rules: [{ kind: 'explode' }] },
        transport: { kind: 'command', command: ['rsync'] },
      },
    });
    expect(p.some((l) => l.startsWith('faults.rules.0.kind:'))).toBe(true);
    expect(p.some((l) => l.startsWith('transport.command:'))).toBe(true);
  });
});

describe('configuration errors print no secret', () => {
  it('worker: DATABASE_URL beside {"database":{"poolsize":4}}', () => {
    const text = problems({
      file: { database: { poolsize: 4 } },
      env: {
        DATABASE_URL: 'postgres://ccat:EnvDbS3cret@db/ops',
        REDIS_URL: 'redis://:EnvRedisS3cret@r:6379',
      },
    }).join('\n');
    expect(text).toContain('database: Unrecognized key: "poolsize"');
    for (const s of ['EnvDbS3cret', 'EnvRedisS3cret']) expect(text).not.toContain(s);
  });
});
