// The monitor's /metrics shape: standard Node.js names, build info, series present from start.
import { OPERATION_TYPES } from '@ccat/db';
import { describe, expect, it } from 'vitest';
import { createMonitorMetrics, NOTIFICATION_RESULTS } from '../src/metrics.js';

describe('monitor metrics', () => {
  it('exports Node.js process metrics under their standard names, and build info', async () => {
    const text = await createMonitorMetrics().registry.metrics();
    expect(text).toMatch(/^process_cpu_seconds_total\{app="ccat-monitor"\} /m);
    expect(text).not.toMatch(/^ccat_monitor_process_/m);
    expect(text).toMatch(/^ccat_build_info\{version="[^"]+",node_version="[^"]+",app="ccat-monitor"\} 1$/m);
  });

  it('has every known label value at 0 from start', async () => {
    const text = await createMonitorMetrics().registry.metrics();
    for (const type of OPERATION_TYPES)
      for (const outcome of ['stall_recovered', 'stall_exhausted'])
        expect(text).toContain(
          `ccat_recoveries_total{outcome="${outcome}",operation_type="${type}",app="ccat-monitor"} 0`,
        );
    for (const result of NOTIFICATION_RESULTS)
      expect(text).toContain(`ccat_notifications_total{result="${result}",app="ccat-monitor"} 0`);
    for (const reason of ['heartbeat_expired', 'progress_stalled', 'no_heartbeat']) {
      expect(text).toContain(`ccat_stalls_detected_total{reason="${reason}",app="ccat-monitor"} 0`);
      // A histogram's known label values too (issue 15): count, sum and every bucket at 0.
      const latency = text
        .split('\n')
        .filter(
          (l) => l.startsWith('ccat_stall_detection_latency_seconds') && l.includes(`reason="${reason}"`),
        );
      expect(latency.filter((l) => l.startsWith('ccat_stall_detection_latency_seconds_count{'))).toHaveLength(
        1,
      );
      expect(latency.length).toBeGreaterThan(2);
      for (const l of latency) expect(l).toMatch(/ 0$/);
    }
    expect(text).toContain('ccat_monitor_last_pass_timestamp_seconds{app="ccat-monitor"} 0');
  });
});
