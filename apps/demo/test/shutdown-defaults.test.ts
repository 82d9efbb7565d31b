// Issue 15, item 2: at the shipped shutdown defaults a worker with a task still running stops within
// its computed bound — well inside Docker's 10 s stop timeout and Kubernetes' 30 s grace — exit 0,
// with the task released (pending again) rather than left in_progress for the monitor's timeout.
import { loadWorkerConfig, workerStopBounds } from '@ccat/worker';
import { afterEach, describe, expect, it } from 'vitest';
import { createE2E, hangFirstAttempt, type E2E } from './support/system.js';

/** Docker's default `docker stop` timeout: the SIGKILL comes after this. */
const DOCKER_STOP_TIMEOUT_MS = 10_000;

let e: E2E | undefined;
afterEach(async () => {
  await e?.close();
  e = undefined;
});

describe('SIGTERM at the default shutdown bounds', () => {
  it('a worker with a hung task exits 0 within its bound and releases the task', async () => {
    const shutdown = loadWorkerConfig({ env: {} }).shutdown;
    const boundMs = workerStopBounds(shutdown).limitMs;
    expect(boundMs).toBeLessThan(DOCKER_STOP_TIMEOUT_MS);
    e = await createE2E('shutdown-defaults');
    const [id] = await e.seed(1);
    // The fixture's short test bounds replaced by the shipped defaults, read from the schema.
    const worker = await e.worker('w-defaults', { ...hangFirstAttempt(120_000), shutdown });
    await worker.waitForLine((l) => l['msg'] === 'injecting fault', 30_000, 'the task hangs');
    const begun = Date.now();
    worker.signal('SIGTERM');
    const code = await Promise.race([
      worker.exited,
      new Promise((r) => setTimeout(() => r('still running'), DOCKER_STOP_TIMEOUT_MS)),
    ]);
    const tookMs = Date.now() - begun;
    console.log(`default bounds: exit ${String(code)} after ${tookMs} ms (bound ${boundMs} ms)`);
    expect(code, `exit after ${tookMs} ms; stderr: ${worker.stderr()}`).toBe(0);
    expect(tookMs).toBeLessThan(boundMs);
    // The grace ran out on the hung task: released, not abandoned.
    expect(tookMs).toBeGreaterThanOrEqual(shutdown.graceMs);
    expect(worker.lines.filter((l) => l['decision'] === 'released').length).toBe(1);
    const row = await e.database.db
      .selectFrom('raw_data_packages')
      .select(['status', 'attempt', 'retry_count'])
      .where('id', '=', id!)
      .executeTakeFirstOrThrow();
    // Back to pending for its next attempt, no retry counted (DESIGN §4: a release is not a failure).
    expect(row).toEqual({ status: 'pending', attempt: 1, retry_count: 0 });
  }, 90_000);
});
