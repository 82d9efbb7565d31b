// The worker's /metrics shape: standard Node.js names, build info, series present from start.
import { OPERATION_TYPES } from '@ccat/db';
import { describe, expect, it } from 'vitest';
import { createWorkerMetrics } from '../src/metrics.js';

describe('worker metrics', () => {
  it('exports Node.js process metrics under their standard names, labelled with the app', async () => {
    const text = await createWorkerMetrics().registry.metrics();
    expect(text).toMatch(/^process_cpu_seconds_total\{app="ccat-worker"\} /m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes\{app="ccat-worker"\} /m);
    expect(text).not.toContain('ccat_worker_');
    expect(text).toMatch(
      new RegExp(
        `^ccat_build_info\\{version="\\d+\\.\\d+\\.\\d+[^"]*",node_version="${process.versions.node}",app="ccat-worker"\\} 1$`,
        'm',
      ),
    );
  });

  it('has every operation type and job outcome at 0 from start', async () => {
    const text = await createWorkerMetrics().registry.metrics();
    for (const type of OPERATION_TYPES) {
      expect(text).toContain(`ccat_permanent_failures_total{operation_type="${type}",app="ccat-worker"} 0`);
      expect(text).toContain(`ccat_in_flight_tasks{operation_type="${type}",app="ccat-worker"} 0`);
      expect(text).toContain(
        `ccat_jobs_total{operation_type="${type}",outcome="completed",app="ccat-worker"} 0`,
      );
      // A histogram's known label values too (issue 15).
      expect(
        text
          .split('\n')
          .filter(
            (l) =>
              l.startsWith('ccat_operation_duration_seconds_count{') &&
              l.includes(`operation_type="${type}"`) &&
              l.includes('outcome="completed"'),
          ),
      ).toEqual([expect.stringMatching(/ 0$/)]);
    }
    expect(text).toContain('ccat_heartbeat_failures_total{app="ccat-worker"} 0');
  });
});
