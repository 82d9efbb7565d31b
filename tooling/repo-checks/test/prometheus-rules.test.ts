// The shipped alert rules (deploy/prometheus) through promtool, and the rules and the Grafana
// dashboard (deploy/grafana) against the metrics the apps export.
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createMonitorMetrics } from '@ccat/monitor-runner';
import { createWorkerMetrics } from '@ccat/worker';
import {
  dashboardExpressions,
  metricNames,
  RULE_TESTS_DIR,
  RULES_FILE,
  shippedRules,
} from '@ccat/test-support';
import { describe, expect, it } from 'vitest';

function promtool(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    execFile('promtool', args, { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error !== null && (error as NodeJS.ErrnoException).code === 'ENOENT') {
        reject(
          new Error(
            'promtool not found: install Debian\'s "prometheus" package (apt-get install prometheus)',
          ),
        );
        return;
      }
      resolve({ code: error === null ? 0 : Number(error.code ?? 1), out: `${stdout}${stderr}` });
    });
  });
}

/** Series Prometheus makes itself for every target. */
const PROMETHEUS_OWN = new Set(['up', 'scrape_duration_seconds', 'scrape_samples_scraped']);

async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [createWorkerMetrics().registry, createMonitorMetrics().registry]) {
    for (const m of await registry.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) names.add(`${m.name}${s}`);
    }
  }
  return names;
}

describe('Prometheus alert rules', () => {
  it('pass promtool check rules', async () => {
    const r = await promtool(['check', 'rules', RULES_FILE]);
    expect(r.out).toContain('SUCCESS');
    expect(r.code, r.out).toBe(0);
  });

  it('pass their promtool unit tests (deploy/prometheus/tests)', async () => {
    const files = readdirSync(RULE_TESTS_DIR).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThan(0);
    const r = await promtool(['test', 'rules', ...files.map((f) => join(RULE_TESTS_DIR, f))]);
    expect(r.code, r.out).toBe(0);
    expect(r.out).not.toContain('FAILED');
  });

  it('every alert has a unit test', () => {
    const { rules } = shippedRules();
    const tests = readdirSync(RULE_TESTS_DIR)
      .map((f) => readFileSync(join(RULE_TESTS_DIR, f), 'utf8'))
      .join('\n');
    for (const r of rules) expect(tests, r.alert).toContain(`alertname: ${r.alert}`);
  });
});

describe('rules and dashboard query only what the apps export', () => {
  it('every metric name in every expression is exported by the worker or the monitor', async () => {
    const exported = await exportedNames();
    const expressions = [...shippedRules().rules.map((r) => r.expr), ...dashboardExpressions()];
    expect(expressions.length).toBeGreaterThan(10);
    const unknown: string[] = [];
    for (const expr of expressions)
      for (const name of metricNames(expr))
        if (!exported.has(name) && !PROMETHEUS_OWN.has(name)) unknown.push(`${name} in ${expr}`);
    expect(unknown).toEqual([]);
  });

  it('the name extractor finds names and skips functions, labels and keywords', () => {
    expect(
      metricNames(
        'sum by (le) (rate(a_bucket{x="y"}[5m])) / clamp_min(sum(rate(b_total[1m])), 1e-9) or time() - max(c) > 900',
      ).sort(),
    ).toEqual(['a_bucket', 'b_total', 'c']);
  });
});
