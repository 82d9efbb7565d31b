import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { dispatchDue, readOperation } from '@ccat/db';
import { ValidationError } from '@ccat/errors';
import { heartbeatKeys } from '@ccat/heartbeat';
import { waitFor } from '@ccat/test-support';
import { describe, expect } from 'vitest';
import type { WorkerConfigInput } from '../src/config.js';
import { workerTest as it } from './harness.js';

type Rules = NonNullable<WorkerConfigInput['faults']>['rules'];
const faulty = (rules: Rules, recovery: WorkerConfigInput['recovery'] = {}): WorkerConfigInput => ({
  faults: { enabled: true, rules },
  recovery: { defaultMaxRetries: 3, backoff: { baseMs: 200, maxMs: 400 }, ...recovery },
});

describe('immediate recovery', () => {
  it('a retryable error → pending with backoff and an INFO outbox row, then success', async ({ harness }) => {
    const h = await harness(
      'fail_retry',
      faulty([{ kind: 'retryable', operationTypes: ['raw_data_package'], attempts: [0] }]),
    );
    const [id] = await h.seed(1, 2);
    const [ref] = await dispatchDue(h.database.db, 'raw_data_package', { limit: 1 });
    const before = Date.now();
    expect(await h.run(ref!)).toBe('retry_scheduled');
    const row = await readOperation(h.database.db, 'raw_data_package', id!);
    expect(row).toMatchObject({
      status: 'pending',
      attempt: 1,
      retryCount: 1,
      lastErrorCode: 'INJECTED_FAULT',
    });
    // Full jitter in [0, 200] ms.
    expect(row!.nextAttemptAt.getTime()).toBeLessThanOrEqual(before + 200 + 1000);
    const notes = await h.database.db.selectFrom('notifications').select(['level', 'event_kind']).execute();
    expect(notes).toEqual([{ level: 'INFO', event_kind: 'retry_scheduled' }]);
    expect(await h.partials()).toEqual([]);
    const outcomes = await h.runUntilQuiet();
    expect(outcomes.find((o) => o.ref.type === 'raw_data_package')).toMatchObject({
      ref: { attempt: 1 },
      outcome: 'completed',
    });
    expect(await readOperation(h.database.db, 'raw_data_package', id!)).toMatchObject({
      status: 'completed',
      attempt: 1,
      retryCount: 1,
    });
  });

  it('a non-retryable error → failed with exactly one ERROR outbox row; the partial output is removed', async ({
    harness,
  }) => {
    const h = await harness(
      'fail_perm',
      faulty([{ kind: 'non_retryable', operationTypes: ['raw_data_package'], stage: 'middle' }]),
    );
    const [id] = await h.seed(1, 2);
    const [ref] = await dispatchDue(h.database.db, 'raw_data_package', { limit: 1 });
    expect(await h.run(ref!)).toBe('permanent_failure');
    expect(await readOperation(h.database.db, 'raw_data_package', id!)).toMatchObject({
      status: 'failed',
      lastErrorCode: 'INJECTED_PERMANENT_FAULT',
    });
    const notes = await h.database.db
      .selectFrom('notifications')
      .select(['level', 'event_kind', 'subject'])
      .execute();
    expect(notes).toHaveLength(1);
    expect(notes[0]).toMatchObject({ level: 'ERROR', event_kind: 'permanent_failure' });
    expect(await h.partials()).toEqual([]);
    const line = h.logs.find((l) => l['decision'] === 'permanent_failure');
    expect(line).toMatchObject({
      operationType: 'raw_data_package',
      operationId: id,
      attempt: 0,
      errorCode: 'INJECTED_PERMANENT_FAULT',
    });
  });

  it('a heartbeat lost while the attempt is still ours is registered again, and removed when the task ends', async ({
    harness,
  }) => {
    const h = await harness(
      'lost_hb',
      faulty([{ kind: 'hang', operationTypes: ['raw_data_package'], stage: 'middle', durationMs: 1000 }]),
    );
    await h.seed(1, 1);
    const [ref] = await dispatchDue(h.database.db, 'raw_data_package', { limit: 1 });
    const member = `raw_data_package:${ref!.id}:0`;
    const keys = heartbeatKeys({ keyPrefix: h.prefix });
    const running = h.run(ref!);
    await waitFor(async () => (await h.redis.zscore(keys.deadlines, member)) !== null, {
      message: 'registered',
    });
    // Redis loses the member (a flush, a failover) while the task runs.
    await h.redis.zrem(keys.deadlines, member);
    await waitFor(() => h.logs.some((l) => String(l['msg']).startsWith('heartbeat member missing')), {
      message: 're-registering logged',
    });
    await waitFor(async () => (await h.redis.zscore(keys.deadlines, member)) !== null, {
      message: 'registered again',
    });
    expect(await running).toBe('completed');
    // The new registration is the one untracked: nothing stays behind to be beaten or "recovered".
    await waitFor(async () => (await h.redis.zscore(keys.deadlines, member)) === null, {
      timeoutMs: 1000,
      message: 'member removed after the task ended',
    });
    expect(await h.redis.hget(keys.details, member)).toBeNull();
  });

  it('retries exhausted → failed after 1 + maxRetries attempts', async ({ harness }) => {
    const h = await harness(
      'fail_exhaust',
      faulty([{ kind: 'retryable', operationTypes: ['raw_data_package'], attempts: [0, 1, 2, 3, 4] }], {
        defaultMaxRetries: 2,
        backoff: { baseMs: 1, maxMs: 5 },
      }),
    );
    const [id] = await h.seed(1, 1);
    const outcomes = await h.runUntilQuiet();
    expect(outcomes.map((o) => o.outcome)).toEqual([
      'retry_scheduled',
      'retry_scheduled',
      'permanent_failure',
    ]);
    expect(await readOperation(h.database.db, 'raw_data_package', id!)).toMatchObject({
      status: 'failed',
      attempt: 2,
      retryCount: 2,
    });
    const events = await h.database.db
      .selectFrom('operation_events')
      .select(['event', 'attempt'])
      .orderBy('id')
      .execute();
    expect(events).toEqual([
      { event: 'retry_scheduled', attempt: 0 },
      { event: 'retry_scheduled', attempt: 1 },
      { event: 'permanent_failure', attempt: 2 },
    ]);
    const notes = await h.database.db.selectFrom('notifications').select(['level']).orderBy('id').execute();
    expect(notes.map((n) => n.level)).toEqual(['INFO', 'INFO', 'ERROR']);
  });

  it('a real fault (a raw file gone missing) fails with FILE_NOT_FOUND and tells a human', async ({
    harness,
  }) => {
    const h = await harness('fail_missing');
    const [id] = await h.seed(1, 2);
    const file = await h.database.db
      .selectFrom('raw_data_files')
      .select('relative_path')
      .executeTakeFirstOrThrow();
    await rm(join(h.locations.byName.get('cha/primecam-raw')!.root, file.relative_path));
    const [ref] = await dispatchDue(h.database.db, 'raw_data_package', { limit: 1 });
    expect(await h.run(ref!)).toBe('permanent_failure');
    expect(await readOperation(h.database.db, 'raw_data_package', id!)).toMatchObject({
      status: 'failed',
      lastErrorCode: 'FILE_NOT_FOUND',
    });
    const [n] = await h.database.db.selectFrom('notifications').select(['context']).execute();
    // What to do travels once, as the context's advice every channel shows (not a second wording in the body).
    expect((n!.context as { advice?: string }).advice).toContain('Check that the location is mounted');
  });
});

describe('malformed jobs', () => {
  it.for([
    ['not an object', 'junk'],
    ['unknown operation type', { operationType: 'telescope', operationId: '1', attempt: 0 }],
    ['non-numeric id', { operationType: 'unpack', operationId: 'abc', attempt: 0 }],
    ['negative attempt', { operationType: 'unpack', operationId: '1', attempt: -1 }],
    ['extra fields', { operationType: 'unpack', operationId: '1', attempt: 0, rm: '-rf /' }],
    ['null', null],
  ])('%s: rejected with a clear log line, no row touched', async ([, payload], { harness }) => {
    const h = await harness('malformed');
    const [id] = await h.seed(1, 1);
    const before = await readOperation(h.database.db, 'raw_data_package', id!);
    await expect(h.runner.run(payload, 'some-job', 'q')).rejects.toBeInstanceOf(ValidationError);
    expect(await readOperation(h.database.db, 'raw_data_package', id!)).toEqual(before);
    const line = h.logs.at(-1)!;
    expect(line['msg']).toBe('malformed job payload: failing the job, no operation touched');
    expect(line['jobId']).toBe('some-job');
    expect((line['problems'] as string[]).length).toBeGreaterThan(0);
  });

  it('a job id that does not match its payload is refused', async ({ harness }) => {
    const h = await harness('malformed');
    await expect(
      h.runner.run({ operationType: 'unpack', operationId: '1', attempt: 0 }, 'unpack:2:0', 'q'),
    ).rejects.toThrow(/does not match/);
  });
});
