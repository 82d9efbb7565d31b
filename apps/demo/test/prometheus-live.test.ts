// A real Prometheus (private port, temporary data directory, 1 s scrape and evaluation) scrapes a
// running worker and monitor (real processes) and evaluates the shipped rules: both targets are
// up, every rule evaluates without error, and CcatMonitorDown fires once the monitor is stopped.
//
// The rules are a test-only copy of deploy/prometheus/ccat-rules.yaml with every `for:` set to 1 s
// (and nothing else changed), so the test takes seconds rather than the shipped minutes; the
// shipped `for:` durations are covered by the promtool unit tests
// (tooling/repo-checks/test/prometheus-rules.test.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, waitFor, type JsonProcess, shippedRules } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createE2E, type E2E } from './support/system.js';

let e2e: E2E;
let dir: string;
let prometheus: ChildProcess | undefined;
let promPort: number;
let workerPort: number;
let monitor: JsonProcess;
let stderr = '';

async function api<T>(path: string): Promise<T> {
  const res = await fetch(`http://127.0.0.1:${promPort}${path}`);
  const body = (await res.json()) as { status: string; data: T };
  if (body.status !== 'success') throw new Error(`${path}: ${JSON.stringify(body)}`);
  return body.data;
}

beforeAll(async () => {
  e2e = await createE2E('promlive');
  dir = await mkdtemp(join(tmpdir(), 'ccat-prometheus-'));
  workerPort = await freePort();
  const monitorPort = await freePort();
  promPort = await freePort();
  await e2e.worker('prom-worker', { http: { host: '127.0.0.1', port: workerPort } });
  monitor = await e2e.monitor('prom-monitor', { http: { host: '127.0.0.1', port: monitorPort } });

  const { rules } = shippedRules();
  await writeFile(
    join(dir, 'rules.yaml'),
    stringify({ groups: [{ name: 'ccat-recovery-test', rules: rules.map((r) => ({ ...r, for: '1s' })) }] }),
  );
  await writeFile(
    join(dir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s', scrape_timeout: '1s' },
      rule_files: [join(dir, 'rules.yaml')],
      scrape_configs: [
        // One job for both, named as the usual prometheus.io/* annotation scrape config names it.
        {
          job_name: 'kubernetes-pods',
          static_configs: [{ targets: [`127.0.0.1:${workerPort}`, `127.0.0.1:${monitorPort}`] }],
        },
      ],
    }),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  prometheus.stderr?.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-4000)));
  prometheus.on('error', (e) => (stderr += `\n${e.message} (install Debian's "prometheus" package)`));
  await waitFor(
    () =>
      fetch(`http://127.0.0.1:${promPort}/-/ready`).then(
        (r) => r.ok,
        () => false,
      ),
    { timeoutMs: 60_000, intervalMs: 200, message: `Prometheus did not get ready: ${stderr}` },
  );
}, 120_000);

afterAll(async () => {
  if (prometheus?.pid !== undefined && prometheus.exitCode === null) {
    prometheus.kill('SIGTERM');
    await new Promise((resolve) => prometheus?.once('exit', resolve));
  }
  await e2e?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}, 60_000);

interface Target {
  labels: { job: string };
  health: string;
  lastError: string;
}
interface Alert {
  labels: { alertname: string };
  state: string;
}

describe('a real Prometheus with the shipped rules', () => {
  it('scrapes the worker and the monitor, evaluates every rule, and fires CcatMonitorDown when the monitor stops', async () => {
    // Both targets up.
    await waitFor(
      async () => {
        const { activeTargets } = await api<{ activeTargets: Target[] }>('/api/v1/targets');
        return activeTargets.length === 2 && activeTargets.every((t) => t.health === 'up');
      },
      { timeoutMs: 30_000, intervalMs: 250, message: 'targets not up' },
    );
    // Both apps' build info and standard process metrics are in Prometheus.
    const info = await api<{ result: { metric: Record<string, string> }[] }>(
      `/api/v1/query?query=${encodeURIComponent('ccat_build_info')}`,
    );
    expect(info.result.map((r) => `${r.metric['job']}:${r.metric['app']}`).sort()).toEqual([
      'kubernetes-pods:ccat-monitor',
      'kubernetes-pods:ccat-worker',
    ]);
    // Every rule has been evaluated, none with an error.
    const ruleCount = shippedRules().rules.length;
    await waitFor(
      async () => {
        const { groups } = await api<{
          groups: { rules: { name: string; health: string; lastError?: string }[] }[];
        }>('/api/v1/rules');
        const all = groups.flatMap((g) => g.rules);
        const bad = all.filter((r) => r.health !== 'ok');
        if (bad.some((r) => r.health === 'err')) throw new Error(`rule errors: ${JSON.stringify(bad)}`);
        return all.length === ruleCount && bad.length === 0;
      },
      { timeoutMs: 20_000, intervalMs: 250, message: 'rules not all evaluated' },
    );
    // The worker is idle, yet each beat is a round trip (it refreshes the worker's health record in the
    // beat's script) and is recorded.
    await waitFor(
      async () =>
        /ccat_heartbeat_rtt_seconds_count\{app="ccat-worker"\} [1-9]/.test(
          await (await fetch(`http://127.0.0.1:${workerPort}/metrics`)).text(),
        ),
      { timeoutMs: 15_000, intervalMs: 250, message: 'an idle beat recorded' },
    );
    const firing = async () =>
      (await api<{ alerts: Alert[] }>('/api/v1/alerts')).alerts
        .filter((a) => a.state === 'firing')
        .map((a) => a.labels.alertname);
    // Before the first scrape of the monitor `up` is absent, so the alert may fire at start; with
    // the monitor up it resolves at the next evaluation.
    await waitFor(async () => !(await firing()).includes('CcatMonitorDown'), {
      timeoutMs: 15_000,
      intervalMs: 250,
      message: 'CcatMonitorDown fires while the monitor is up',
    });

    // Stop the monitor: its target goes down and CcatMonitorDown fires.
    monitor.signal('SIGTERM');
    await monitor.exited;
    await waitFor(async () => (await firing()).includes('CcatMonitorDown'), {
      timeoutMs: 30_000,
      intervalMs: 250,
      message: 'CcatMonitorDown did not fire',
    });
  }, 120_000);
});
