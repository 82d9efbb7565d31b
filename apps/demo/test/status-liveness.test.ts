// `ccat-recovery status` against a real worker process (issue 16, item 2): a live worker publishes
// the queues it serves, so waiting work in them is not "unserved"; SIGKILLed, it is shown dead
// within its liveness bound (its health key's TTL), and the work waiting in its queue is then
// reported per queue and listed as stuck, with why.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { testRedisUrl, waitFor } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createE2E, runCli, TIMEOUT_MS, type E2E } from './support/system.js';

let e: E2E;
let config: string;
const QUEUE = 'cha_primecam-raw_raw_data_package';

beforeAll(async () => {
  e = await createE2E('status_live');
  config = join(e.root, 'cli.json');
  await writeFile(
    config,
    JSON.stringify({
      database: { url: e.testSchema.url, schema: e.testSchema.schema },
      redis: { url: testRedisUrl() },
      keyPrefix: e.prefix,
      monitor: { livenessTimeoutMs: TIMEOUT_MS, heartbeatIntervalMs: 150, scheduleTimeoutMs: 5000 },
    }),
  );
}, 120_000);
afterAll(() => e?.close());

async function status(...args: string[]) {
  const run = await runCli(['--config', config, 'status', ...args], {});
  expect(run.code, run.stderr).toBe(0);
  return run;
}

describe('status with a real worker', () => {
  it('shows a SIGKILLed worker dead within the liveness bound, and its queue then unserved', async () => {
    const [id] = await e.seed(1);
    // The worker listens on the queue but does not dispatch: the package stays pending, served.
    const worker = await e.worker('w-live', { dispatcher: { enabled: false } });
    const before = JSON.parse((await status('--json')).stdout);
    expect(before.services).toEqual([
      expect.objectContaining({ serviceType: 'worker', serviceName: 'w-live', status: 'alive' }),
    ]);
    expect(before.services[0].queues).toContain(QUEUE);
    expect(before.unserved).toEqual([]);
    expect(before.warnings).toEqual([]);
    expect(before.stuck).toMatchObject({ total: 0 });

    worker.signal('SIGKILL');
    await worker.exited;
    const killedAt = Date.now();
    // Its health key was last refreshed before the kill and lives TIMEOUT_MS: any read that starts
    // that long after the kill sees it dead (no polling: the bound itself is the claim).
    await new Promise((r) => setTimeout(r, TIMEOUT_MS - (Date.now() - killedAt) + 50));
    const [after, text] = await Promise.all([status('--json'), status()]);
    const doc = JSON.parse(after.stdout);
    expect(doc.services).toEqual([expect.objectContaining({ serviceName: 'w-live', status: 'dead' })]);
    expect(doc.unserved).toEqual([
      { operationType: 'raw_data_package', queue: QUEUE, pending: 1, scheduled: 0 },
    ]);
    expect(doc.stuck.rows).toEqual([
      expect.objectContaining({
        operationType: 'raw_data_package',
        operationId: id,
        status: 'pending',
        kinds: ['unserved_queue'],
        reason: `pending, no live worker serves queue ${QUEUE}`,
      }),
    ]);
    expect(text.stdout).toContain(
      `WARNING: 1 waiting (1 pending, 0 scheduled), no live worker serves queue ${QUEUE}`,
    );
    expect(text.stdout).toMatch(
      new RegExp(
        `^raw_data_package\\s+${id}\\s+0\\s+\\S.*\\s+-\\s+pending, no live worker serves queue ${QUEUE}$`,
        'm',
      ),
    );
    expect(text.stdout).toMatch(/^worker\s+w-live\s+dead\s/m);

    // A worker serving it again: the warning goes away.
    await e.worker('w-back', { dispatcher: { enabled: false } });
    await waitFor(async () => JSON.parse((await status('--json')).stdout).unserved.length === 0, {
      timeoutMs: 20_000,
      message: 'the queue served again',
    });
  });
});
