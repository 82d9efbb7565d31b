import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MAX_BODY,
  MAX_MESSAGE,
  MAX_NAME,
  MAX_SUBJECT,
  recordEvent,
  recordNotification,
} from '../src/index.js';
import { createTestDatabase, type TestDatabase } from '../src/testing.js';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_records');
});
afterAll(async () => {
  await t?.close();
});

describe('recordEvent / recordNotification (the one writer, on its own)', () => {
  it('write one row each, bounded by the named limits, secrets redacted, for any operation type', async () => {
    const operation = { type: 'calibration_upload', id: '42', attempt: 3 };
    const huge = 'x'.repeat(100_000);
    const eventId = await recordEvent(
      t.db,
      operation,
      { event: 'lease_lost', workerId: 'w'.repeat(1000), context: { password: 'hunter2' } },
      { code: 'C'.repeat(1000), message: huge, errorClass: 'E', retryable: false },
    );
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('id', '=', eventId)
      .executeTakeFirstOrThrow();
    expect(ev).toMatchObject({
      operation_type: 'calibration_upload',
      operation_id: '42',
      attempt: 3,
      event: 'lease_lost',
    });
    expect(ev.error_code!.length).toBeLessThanOrEqual(MAX_NAME + 40);
    expect(ev.worker_id!.length).toBeLessThanOrEqual(MAX_NAME + 40);
    expect(ev.message!.length).toBeLessThanOrEqual(MAX_MESSAGE + 40);
    expect(JSON.stringify(ev.context)).not.toContain('hunter2');

    const n = {
      level: 'ERROR' as const,
      eventKind: 'lease_lost',
      subject: huge,
      body: huge + huge,
      dedupKey: 'k',
    };
    const noteId = await recordNotification(t.db, n, operation);
    const row = await t.db
      .selectFrom('notifications')
      .selectAll()
      .where('id', '=', noteId)
      .executeTakeFirstOrThrow();
    expect(row).toMatchObject({
      status: 'pending',
      operation_type: 'calibration_upload',
      operation_id: '42',
    });
    expect(row.subject.length).toBeLessThanOrEqual(MAX_SUBJECT + 40);
    expect(row.body.length).toBeLessThanOrEqual(MAX_BODY + 40);
  });

  it('refuse a bad id or attempt before writing anything', async () => {
    const bad = { type: 'x', id: 'DROP TABLE', attempt: 0 };
    await expect(recordEvent(t.db, bad, { event: 'lease_lost' })).rejects.toThrow(/id/i);
    await expect(recordEvent(t.db, { ...bad, id: '1', attempt: -1 }, { event: 'x' })).rejects.toThrow();
  });
});
