// Redis Cluster (issue 15 item 1): a private 3-primary cluster, a real worker and a real monitor
// configured with `redis.cluster` only, and raw data packages through the whole pipeline (every
// operation type) to the end: every operation completed once, none failed, every process still up.
// Every key of the deployment, BullMQ's included, sits under one hash tag, so every script ran on
// one node; the test checks that the keys exist there and nowhere else. The servers are stopped at
// the end.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OPERATION_TYPES } from '@ccat/db';
import { PrivateRedisCluster, waitFor } from '@ccat/test-support';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkCompletedOnce } from '../src/integrity.js';
import { readStats } from '../src/stats.js';
import { createE2E, runCli, type E2E } from './support/system.js';

let cluster: PrivateRedisCluster;
let e2e: E2E;

beforeAll(async () => {
  cluster = await PrivateRedisCluster.start(3);
  // `url: undefined` drops the shared Redis's URL from the processes' files: cluster only.
  e2e = await createE2E('rcluster', { redis: { url: undefined, cluster: cluster.nodes } });
}, 120_000);

afterAll(async () => {
  await e2e?.close();
  await cluster?.[Symbol.asyncDispose]();
}, 60_000);

it('a worker and a monitor on a 3-primary Redis Cluster run the pipeline to the end', async () => {
  const worker = await e2e.worker('cluster-worker', {
    operationTypes: [...OPERATION_TYPES],
    dispatcher: { bundleSize: 2, bundleMaxWaitMs: 500 },
  });
  const monitor = await e2e.monitor('cluster-monitor');
  const seeded = await e2e.seed(4);
  const stats = await waitFor(
    async () => {
      const s = await readStats(e2e.database.db);
      return s.nonFinal === 0 && s.unbundled === 0 && s.stages.deletion.done > 0 && s;
    },
    { timeoutMs: 90_000, intervalMs: 250, message: 'every operation final on the cluster' },
  );
  expect(stats.stages.raw_data_package.done).toBe(seeded.length);
  for (const type of OPERATION_TYPES) expect(stats.stages[type].failed).toBe(0);
  expect((await checkCompletedOnce(e2e.database.db)).problems).toEqual([]);
  // Every key of the deployment (heartbeats, health, BullMQ's) on one node, under one hash tag.
  const client = new Cluster(
    cluster.nodes.map((n) => ({ host: '127.0.0.1', port: Number(n.split(':')[1]) })),
  );
  try {
    await waitFor(() => client.status === 'ready', {
      timeoutMs: 10_000,
      message: 'the probe cluster client',
    });
    const keysPerNode = await Promise.all(client.nodes('master').map((n) => n.keys(`${e2e.prefix}*`)));
    const withKeys = keysPerNode.filter((k) => k.length > 0);
    expect(withKeys).toHaveLength(1);
    const tag = `${e2e.prefix}{${e2e.prefix.replace(/:+$/, '')}}:`;
    expect(withKeys[0]!.some((k) => k.startsWith(`${tag}bull:`))).toBe(true);
    expect(withKeys[0]!.every((k) => k.startsWith(tag))).toBe(true);
  } finally {
    client.disconnect();
  }
  expect(worker.lines.filter((l) => Number(l['level']) >= 60)).toEqual([]);
  expect(monitor.lines.filter((l) => Number(l['level']) >= 60)).toEqual([]);
  // The CLI on the same configuration file reads the same keys: the worker alive, no stuck work.
  const cli = await runCli(['--config', join(e2e.root, 'cluster-monitor.json'), 'status', '--json'], {});
  expect(cli.code, cli.stderr).toBe(0);
  expect(JSON.parse(cli.stdout).services).toContainEqual(
    expect.objectContaining({ serviceType: 'worker', serviceName: 'cluster-worker', status: 'alive' }),
  );
  worker.signal('SIGTERM');
  monitor.signal('SIGTERM');
  expect(await worker.exited).toBe(0);
  expect(await monitor.exited).toBe(0);
}, 180_000);

it('a cluster beside REDIS_URL stops the CLI with one line naming both, before any connection', async () => {
  const file = join(e2e.root, 'both.json');
  await writeFile(file, JSON.stringify({ redis: { cluster: cluster.nodes } }));
  const run = await runCli(['--config', file, 'status'], {
    REDIS_URL: 'redis://:hunter2hunter2@127.0.0.1:1',
  });
  expect(run.code).toBe(2);
  expect(run.stderr).toContain('redis.cluster');
  expect(run.stderr).toContain('exactly one of url, sentinels and cluster may be set, not url and cluster');
  expect(run.stderr + run.stdout).not.toContain('hunter2hunter2');
}, 60_000);
