import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claim,
  complete,
  dispatch,
  dispatchDue,
  lockInProgress,
  manualRetry,
  markFailed,
  OPERATION_TYPES,
  readOperation,
  recoverStalled,
  release,
  resetForRetry,
  touchScheduled,
  updateProgress,
  type OperationType,
  type TransitionOptions,
  type FencedWriteResult,
} from '../src/index.js';
import {
  createTestDatabase,
  seedOperation,
  type SeedState,
  sideCounts,
  type SeededTestDatabase,
} from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_transitions', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

const withSide: TransitionOptions = {
  event: { workerId: 'w1', context: { note: 'test' } },
  notification: { level: 'ERROR', eventKind: 'test', subject: 's', body: 'b', dedupKey: 'k' },
};

const seed = (type: OperationType, state: SeedState) => seedOperation(t.db, t.locations, type, state);

/** A refused transition changes no column of the row and writes no event or notification. */
async function expectRefused(
  type: OperationType,
  id: string,
  run: () => Promise<FencedWriteResult>,
): Promise<void> {
  const before = await readOperation(t.db, type, id);
  const side = await sideCounts(t.db);
  const result = await run();
  expect(result).toEqual({ applied: false });
  expect(await readOperation(t.db, type, id)).toEqual(before);
  expect(await sideCounts(t.db)).toEqual(side);
}

describe.each(OPERATION_TYPES.map((type) => [type]))('%s', (type) => {
  it('dispatch: due pending → scheduled; not yet due, or not pending, refused', async () => {
    const id = await seed(type, { status: 'pending', attempt: 2 });
    const r = await dispatch(t.db, type, id);
    expect(r.applied).toBe(true);
    expect(r.operation).toMatchObject({ type, id, status: 'scheduled', attempt: 2 });
    expect(r.operation?.scheduledAt).toBeInstanceOf(Date);
    await expectRefused(type, id, () => dispatch(t.db, type, id));
    const later = await seed(type, { status: 'pending', nextAttemptInS: 3600 });
    await expectRefused(type, later, () => dispatch(t.db, type, later));
  });

  it('claim: scheduled(k) → in_progress; a stale attempt or a wrong status is refused', async () => {
    const id = await seed(type, { status: 'scheduled', attempt: 3 });
    await expectRefused(type, id, () => claim(t.db, { type, id, attempt: 2 }, { workerId: 'w' }));
    await expectRefused(type, id, () => claim(t.db, { type, id, attempt: 4 }, { workerId: 'w' }));
    const r = await claim(t.db, { type, id, attempt: 3 }, { workerId: 'worker-7' });
    expect(r).toEqual({ applied: true });
    const row = await readOperation(t.db, type, id);
    expect(row).toMatchObject({
      status: 'in_progress',
      attempt: 3,
      claimedBy: 'worker-7',
      progressBytes: '0',
    });
    expect(row?.startedAt).toBeInstanceOf(Date);
    expect(row?.lastSeenAt).toBeInstanceOf(Date);
    await expectRefused(type, id, () => claim(t.db, { type, id, attempt: 3 }, { workerId: 'w2' }));
  });

  it('updateProgress: fenced progress and last_seen_at', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 1, lastSeenAgoS: 100 });
    const before = await readOperation(t.db, type, id);
    const r = await updateProgress(t.db, { type, id, attempt: 1 }, { bytesDone: 12345 });
    expect(r.applied).toBe(true);
    const after = await readOperation(t.db, type, id);
    expect(after?.progressBytes).toBe('12345');
    expect(after!.lastSeenAt!.getTime()).toBeGreaterThan(before!.lastSeenAt!.getTime());
    await expectRefused(type, id, () => updateProgress(t.db, { type, id, attempt: 0 }, { bytesDone: 1 }));
  });

  it('complete: in_progress(k) → completed with its event; stale or wrong status refused', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 1 });
    await expectRefused(type, id, () => complete(t.db, { type, id, attempt: 0 }, withSide));
    const side = await sideCounts(t.db);
    const r = await complete(t.db, { type, id, attempt: 1 }, { event: { workerId: 'w1' } });
    expect(r.applied).toBe(true);
    expect(await readOperation(t.db, type, id)).toMatchObject({ status: 'completed', attempt: 1 });
    expect(r.eventId).toBeDefined();
    expect(await sideCounts(t.db)).toEqual({ ...side, events: side.events + 1 });
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('id', '=', r.eventId!)
      .executeTakeFirstOrThrow();
    expect(ev).toMatchObject({
      operation_type: type,
      operation_id: id,
      attempt: 1,
      event: 'completed',
      worker_id: 'w1',
    });
    await expectRefused(type, id, () => complete(t.db, { type, id, attempt: 1 }, withSide));
  });

  it('resetForRetry: in_progress(k) → pending(k+1), retry+1, backoff, error kept, event and outbox together', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 4, retryCount: 1 });
    await expectRefused(type, id, () =>
      resetForRetry(
        t.db,
        { type, id, attempt: 3 },
        { delayMs: 1, error: { code: 'X', message: 'x' } },
        withSide,
      ),
    );
    const r = await resetForRetry(
      t.db,
      { type, id, attempt: 4 },
      {
        delayMs: 60_000,
        error: {
          code: 'CONNECTION_RESET',
          message: 'read ECONNRESET',
          errorClass: 'NetworkError',
          retryable: true,
        },
      },
      withSide,
    );
    expect(r.operation).toMatchObject({
      status: 'pending',
      attempt: 5,
      retryCount: 2,
      claimedBy: null,
      scheduledAt: null,
      lastErrorCode: 'CONNECTION_RESET',
      lastErrorMessage: 'read ECONNRESET',
    });
    const delay = r.operation!.nextAttemptAt.getTime() - Date.now();
    expect(delay).toBeGreaterThan(50_000);
    expect(delay).toBeLessThan(70_000);
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('id', '=', r.eventId!)
      .executeTakeFirstOrThrow();
    expect(ev).toMatchObject({
      attempt: 4,
      event: 'retry_scheduled',
      error_code: 'CONNECTION_RESET',
      error_class: 'NetworkError',
      retryable: true,
    });
    expect(ev.context).toEqual({ note: 'test' });
    const n = await t.db
      .selectFrom('notifications')
      .selectAll()
      .where('id', '=', r.notificationId!)
      .executeTakeFirstOrThrow();
    expect(n).toMatchObject({
      level: 'ERROR',
      status: 'pending',
      operation_type: type,
      operation_id: id,
      dedup_key: 'k',
    });
    await expectRefused(type, id, () =>
      resetForRetry(
        t.db,
        { type, id, attempt: 4 },
        { delayMs: 0, error: { code: 'X', message: 'x' } },
        withSide,
      ),
    );
  });

  it('markFailed: in_progress(k) → failed with the error; stale refused', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 2 });
    const error = { code: 'CHECKSUM_MISMATCH', message: 'sha256 differs' };
    await expectRefused(type, id, () => markFailed(t.db, { type, id, attempt: 1 }, { error }, withSide));
    const r = await markFailed(t.db, { type, id, attempt: 2 }, { error }, withSide);
    expect(r.operation).toMatchObject({ status: 'failed', attempt: 2, lastErrorCode: 'CHECKSUM_MISMATCH' });
    expect(r.operation?.finishedAt).toBeInstanceOf(Date);
    expect(r.notificationId).toBeDefined();
    await expectRefused(type, id, () => markFailed(t.db, { type, id, attempt: 2 }, { error }, withSide));
  });

  it('recoverStalled: in_progress(k) → pending(k+1), counted; stale refused', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 0, retryCount: 0 });
    const r = await recoverStalled(t.db, { type, id, attempt: 0 }, {}, { event: {} });
    expect(r.operation).toMatchObject({
      status: 'pending',
      attempt: 1,
      retryCount: 1,
      lastErrorCode: 'STALLED',
    });
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('id', '=', r.eventId!)
      .executeTakeFirstOrThrow();
    expect(ev.event).toBe('stall_recovered');
    await expectRefused(type, id, () => recoverStalled(t.db, { type, id, attempt: 0 }, {}, withSide));
  });

  it('release: in_progress(k) → pending(k+1), due now, no retry counted', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 5, retryCount: 2 });
    const r = await release(t.db, { type, id, attempt: 5 }, { event: {} });
    expect(r.operation).toMatchObject({ status: 'pending', attempt: 6, retryCount: 2 });
    expect(r.operation!.nextAttemptAt.getTime()).toBeLessThanOrEqual(Date.now() + 1000);
    await expectRefused(type, id, () => release(t.db, { type, id, attempt: 5 }));
  });

  it('manualRetry: failed → pending(k+1), retry_count reset; only from failed, and only at the expected attempt', async () => {
    const id = await seed(type, { status: 'failed', attempt: 3, retryCount: 3 });
    await expectRefused(type, id, () => manualRetry(t.db, type, id, { expectedAttempt: 2 }, withSide));
    const r = await manualRetry(t.db, type, id, { expectedAttempt: 3 }, { event: { workerId: 'admin' } });
    expect(r.operation).toMatchObject({ status: 'pending', attempt: 4, retryCount: 0, finishedAt: null });
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('id', '=', r.eventId!)
      .executeTakeFirstOrThrow();
    expect(ev).toMatchObject({ event: 'manual_retry', attempt: 3, worker_id: 'admin' });
    await expectRefused(type, id, () => manualRetry(t.db, type, id));
  });

  it('touchScheduled: re-dispatch keeps the attempt; refused once claimed', async () => {
    const id = await seed(type, { status: 'scheduled', attempt: 1, scheduledAgoS: 600 });
    expect((await touchScheduled(t.db, { type, id, attempt: 1 })).applied).toBe(true);
    const row = await readOperation(t.db, type, id);
    expect(row).toMatchObject({ status: 'scheduled', attempt: 1 });
    expect(Date.now() - row!.scheduledAt!.getTime()).toBeLessThan(5_000);
    await claim(t.db, { type, id, attempt: 1 }, { workerId: 'w' });
    await expectRefused(type, id, () => touchScheduled(t.db, { type, id, attempt: 1 }));
  });

  it('lockInProgress reads attempt k inside a transaction, undefined once it moved on', async () => {
    const id = await seed(type, { status: 'in_progress', attempt: 2 });
    const locked = await t.db.transaction().execute((trx) => lockInProgress(trx, { type, id, attempt: 2 }));
    expect(locked).toMatchObject({ id, attempt: 2, status: 'in_progress' });
    expect(await lockInProgress(t.db, { type, id, attempt: 1 })).toBeUndefined();
  });
});

describe('dispatchDue', () => {
  it('schedules only due pending rows, at most `limit`, and never the same row twice across dispatchers', async () => {
    const type = 'data_transfer';
    const due = await Promise.all(
      Array.from({ length: 30 }, () => seed(type, { status: 'pending', attempt: 1 })),
    );
    await seed(type, { status: 'pending', nextAttemptInS: 3600 });
    const [a, b, c] = await Promise.all([
      dispatchDue(t.db, type, { limit: 20 }),
      dispatchDue(t.db, type, { limit: 20 }),
      dispatchDue(t.db, type, { limit: 20 }),
    ]);
    const all = [...a, ...b, ...c].map((r) => r.id).filter((id) => due.includes(id));
    expect(new Set(all).size).toBe(all.length);
    expect(all.length).toBe(30);
    for (const r of [...a, ...b, ...c].filter((x) => due.includes(x.id)))
      expect(r).toMatchObject({ type, attempt: 1 });
    // Each call took at most its limit (earlier tests left other due rows of this type behind).
    for (const batch of [a, b, c]) expect(batch.length).toBeLessThanOrEqual(20);
  });
});

describe('unpack lives in data_transfers with its own state', () => {
  it('retrying the unpack leaves the transfer completed', async () => {
    const id = await seed('unpack', { status: 'in_progress', attempt: 0 });
    await resetForRetry(
      t.db,
      { type: 'unpack', id, attempt: 0 },
      { delayMs: 0, error: { code: 'UNPACK_FAILED', message: 'x' } },
    );
    expect(await readOperation(t.db, 'data_transfer', id)).toMatchObject({ status: 'completed', attempt: 0 });
    expect(await readOperation(t.db, 'unpack', id)).toMatchObject({ status: 'pending', attempt: 1 });
  });

  it('an unpack that does not exist yet reads as undefined', async () => {
    const id = await seed('data_transfer', { status: 'in_progress' });
    expect(await readOperation(t.db, 'unpack', id)).toBeUndefined();
  });
});
