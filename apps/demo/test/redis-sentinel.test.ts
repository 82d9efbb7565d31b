// Redis Sentinel (issue 15 item 1): a private primary, replica and three sentinels; a real worker
// and a real monitor configured with `redis.sentinels` and `redis.sentinelName` only. Mid-pipeline
// the primary is SIGKILLed; the sentinels promote the replica, the processes find it through them
// and stay up, and the run completes: every operation completed (nothing lost, whatever the
// asynchronous replica had not yet received), each exactly once (one completion event per
// operation). Every server is stopped at the end.
import { join } from 'node:path';
import { OPERATION_TYPES } from '@ccat/db';
import { PrivateRedisSentinel, waitFor } from '@ccat/test-support';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { checkCompletedOnce } from '../src/integrity.js';
import { readStats } from '../src/stats.js';
import { createE2E, runCli, type E2E } from './support/system.js';

let topology: PrivateRedisSentinel;
let e2e: E2E;

beforeAll(async () => {
  topology = await PrivateRedisSentinel.start('ccat-test');
  // `url: undefined` drops the shared Redis's URL from the processes' files: sentinels only.
  e2e = await createE2E('rsentinel', {
    redis: { url: undefined, sentinels: topology.addresses, sentinelName: 'ccat-test' },
  });
}, 120_000);

afterAll(async () => {
  await e2e?.close();
  await topology?.[Symbol.asyncDispose]();
}, 60_000);

it('the primary SIGKILLed mid-pipeline: the replica is promoted, the processes stay up, every operation completes once', async () => {
  const worker = await e2e.worker('sentinel-worker', {
    operationTypes: [...OPERATION_TYPES],
    dispatcher: { bundleSize: 2, bundleMaxWaitMs: 500 },
  });
  const monitor = await e2e.monitor('sentinel-monitor');
  const seeded = await e2e.seed(12);
  const [primary, replica] = topology.servers;
  expect(await topology.primaryPort()).toBe(primary!.port);
  // Mid-pipeline: some work done, some not.
  await waitFor(
    async () => {
      const s = await readStats(e2e.database.db);
      return s.stages.raw_data_package.done >= 2 && s.nonFinal > 0;
    },
    { timeoutMs: 60_000, intervalMs: 50, message: 'the pipeline under way' },
  );
  await primary!.stop('SIGKILL');
  await waitFor(async () => (await topology.primaryPort()) === replica!.port, {
    timeoutMs: 60_000,
    message: 'the sentinels to promote the replica',
  });
  const stats = await waitFor(
    async () => {
      const s = await readStats(e2e.database.db);
      return s.nonFinal === 0 && s.unbundled === 0 && s.stages.deletion.done > 0 && s;
    },
    { timeoutMs: 120_000, intervalMs: 250, message: 'every operation final after the failover' },
  );
  expect(stats.stages.raw_data_package.done).toBe(seeded.length);
  for (const type of OPERATION_TYPES) expect(stats.stages[type].failed).toBe(0);
  expect((await checkCompletedOnce(e2e.database.db)).problems).toEqual([]);
  // The processes stayed up through the failover and logged nothing fatal.
  expect([worker.child.exitCode, monitor.child.exitCode]).toEqual([null, null]);
  expect(worker.lines.filter((l) => Number(l['level']) >= 60)).toEqual([]);
  expect(monitor.lines.filter((l) => Number(l['level']) >= 60)).toEqual([]);
  // The CLI on the same configuration file reads the same keys: the worker alive, no stuck work.
  const cli = await runCli(['--config', join(e2e.root, 'sentinel-monitor.json'), 'status', '--json'], {});
  expect(cli.code, cli.stderr).toBe(0);
  expect(JSON.parse(cli.stdout).services).toContainEqual(
    expect.objectContaining({ serviceType: 'worker', serviceName: 'sentinel-worker', status: 'alive' }),
  );
  worker.signal('SIGTERM');
  monitor.signal('SIGTERM');
  expect(await worker.exited).toBe(0);
  expect(await monitor.exited).toBe(0);
}, 300_000);
