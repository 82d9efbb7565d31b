// The monitor's view of the liveness and progress bounds (issue 13): inconsistent or removed
// settings are refused at start, naming the key and what to do.
import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { loadMonitorConfig } from '../src/index.js';

const problems = (file: unknown): string[] => {
  try {
    loadMonitorConfig({ file, env: {} });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as Error).message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  return [];
};

describe('monitor configuration: liveness and progress', () => {
  it('ships a liveness bound of seconds and the seed’s one-hour progress bound', () => {
    const c = loadMonitorConfig({ env: {} });
    expect(c.monitor).toMatchObject({
      livenessTimeoutMs: 12_000,
      heartbeatIntervalMs: 4_000,
      progressTimeoutMs: 3_600_000,
    });
  });

  it('refuses a liveness bound under two beats and a progress bound under the liveness bound, also per type', () => {
    expect(
      problems({
        monitor: {
          heartbeatIntervalMs: 1000,
          livenessTimeoutMs: 1500,
          progressTimeoutMs: 1000,
          operationTypes: { unpack: { progressTimeoutMs: 100 } },
        },
      }),
    ).toEqual([
      'monitor.livenessTimeoutMs: must be at least 2 × monitor.heartbeatIntervalMs (2000), got 1500',
      'monitor.progressTimeoutMs: must be at least monitor.livenessTimeoutMs (1500), got 1000',
      'monitor.operationTypes.unpack.progressTimeoutMs: must be at least monitor.livenessTimeoutMs (1500), got 100',
    ]);
  });

  it('refuses durations past the longest Node.js timer (2^31 − 1 ms), which would fire at once', () => {
    // Before, shutdown.timeoutMs: 3e9 was accepted and its timer fired at once: exit 1 on SIGTERM.
    const refused = problems({ shutdown: { timeoutMs: 3e9 }, monitor: { leaseMs: 3e9 } });
    expect(refused.some((l) => l.startsWith('shutdown.timeoutMs:'))).toBe(true);
    expect(refused.some((l) => l.startsWith('monitor.leaseMs:'))).toBe(true);
    expect(problems({ shutdown: { timeoutMs: 2_147_483_647 } })).toEqual([]);
  });

  it('refuses the removed monitor.heartbeatTimeoutMs, saying what it became', () => {
    const p = problems({
      monitor: {
        heartbeatTimeoutMs: 3_600_000,
        operationTypes: { deletion: { heartbeatTimeoutMs: 60_000 } },
      },
    });
    expect(p).toHaveLength(2);
    expect(p[0]).toMatch(/^monitor\.heartbeatTimeoutMs: removed: .*progressTimeoutMs.*livenessTimeoutMs/);
    expect(p[1]).toMatch(/^monitor\.operationTypes\.deletion\.heartbeatTimeoutMs: removed: /);
  });
});
