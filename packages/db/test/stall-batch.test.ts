import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  complete,
  lockInProgressMany,
  MAX_MESSAGE,
  MAX_SUBJECT,
  OPERATION_TYPES,
  readOperation,
  recoverStalledMany,
  type OperationType,
  type StallRecoveryRow,
} from '../src/index.js';
import { createTestDatabase, seedOperation, sideCounts, type SeededTestDatabase } from '../src/testing.js';
import { recording } from './support/plans.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_stall_batch', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

const seed = (type: OperationType, n: number, state: Parameters<typeof seedOperation>[3]) =>
  Promise.all(Array.from({ length: n }, () => seedOperation(t.db, t.locations, type, state)));

function row(
  id: string,
  attempt: number,
  transition: 'stall' | 'fail',
  over: Partial<StallRecoveryRow> = {},
) {
  const code = transition === 'stall' ? 'STALLED' : 'STALLED_TOO_OFTEN';
  return {
    id,
    attempt,
    transition,
    delayMs: 60_000,
    error: { code, message: 'stalled: test', errorClass: 'Stall', retryable: transition === 'stall' },
    event: {
      event: transition === 'stall' ? 'stall_recovered' : 'stall_exhausted',
      workerId: 'monitor-1',
      context: { reason: 'heartbeat_expired' },
    },
    notification: {
      level: 'WARNING',
      eventKind: transition === 'stall' ? 'stall_recovered' : 'stall_exhausted',
      subject: `op ${id} stalled`,
      body: 'body',
      context: { operationId: id },
      dedupKey: `stall_recovered:x:${code}`,
    },
    ...over,
  } satisfies StallRecoveryRow;
}

describe('recoverStalledMany', () => {
  it.each(OPERATION_TYPES)('%s: each row fenced on its own attempt and status', async (type) => {
    const ids = await seed(type, 6, { status: 'in_progress', attempt: 2, retryCount: 1 });
    const [movedOn] = await seed(type, 1, { status: 'in_progress', attempt: 3 });
    const [done] = await seed(type, 1, { status: 'completed', attempt: 2 });
    const before = await sideCounts(t.db);

    const locked = await lockInProgressMany(t.db, type, [
      ...ids.map((id) => ({ id, attempt: 2 })),
      { id: movedOn!, attempt: 2 },
      { id: done!, attempt: 2 },
    ]);
    expect(locked.locked.map((r) => r.id).sort()).toEqual([...ids].sort());
    expect(locked.busy).toEqual([]);

    const rows = [
      ...ids.map((id, i) => row(id, 2, i === 0 ? 'fail' : 'stall')),
      row(movedOn!, 2, 'stall'),
      row(done!, 2, 'fail'),
    ];
    const applied = await recoverStalledMany(t.db, type, rows);
    expect([...applied.keys()].sort()).toEqual([...ids].sort());
    expect(applied.get(ids[0]!)).toMatchObject({
      status: 'failed',
      attempt: 2,
      lastErrorCode: 'STALLED_TOO_OFTEN',
    });
    expect(applied.get(ids[1]!)).toMatchObject({
      status: 'pending',
      attempt: 3,
      retryCount: 2,
      lastErrorCode: 'STALLED',
    });
    // The delay is applied (the answer carries the counters, not the timestamps).
    expect((await readOperation(t.db, type, ids[1]!))!.nextAttemptAt.getTime()).toBeGreaterThan(
      Date.now() + 30_000,
    );
    expect(await readOperation(t.db, type, movedOn!)).toMatchObject({ status: 'in_progress', attempt: 3 });
    expect(await readOperation(t.db, type, done!)).toMatchObject({ status: 'completed', attempt: 2 });

    // Events and outbox rows exactly for the updated rows, about the attempt that stalled.
    const after = await sideCounts(t.db);
    expect(after.events - before.events).toBe(6);
    expect(after.notifications - before.notifications).toBe(6);
    const events = await t.db
      .selectFrom('operation_events')
      .select(['operation_id', 'attempt', 'event', 'error_code', 'worker_id'])
      .where('operation_type', '=', type)
      .where('operation_id', 'in', [...ids, movedOn!, done!])
      .execute();
    expect(events.map((e) => String(e.operation_id)).sort()).toEqual([...ids].sort());
    expect(events.every((e) => e.attempt === 2 && e.worker_id === 'monitor-1')).toBe(true);
    expect(events.filter((e) => e.event === 'stall_exhausted').map((e) => String(e.operation_id))).toEqual([
      ids[0],
    ]);

    // A second run changes nothing: the attempts moved on.
    expect((await recoverStalledMany(t.db, type, rows)).size).toBe(0);
    expect(await sideCounts(t.db)).toEqual(after);
  });

  it('bounds and redacts through the one writer', async () => {
    const [id] = await seed('data_transfer', 1, { status: 'in_progress', attempt: 1 });
    const secret = 'postgres://ops:hunter2@db.example/ccat';
    const long = `${secret} ${'x'.repeat(MAX_MESSAGE * 2)}`;
    const r = row(id!, 1, 'stall', {
      error: { code: 'STALLED', message: long, retryable: true },
      event: { message: long, context: { url: secret } },
    });
    const notification = { ...r.notification, subject: long, body: `${secret}\nbody` };
    await recoverStalledMany(t.db, 'data_transfer', [{ ...r, notification }]);
    const op = await readOperation(t.db, 'data_transfer', id!);
    const ev = await t.db
      .selectFrom('operation_events')
      .selectAll()
      .where('operation_id', '=', id!)
      .executeTakeFirstOrThrow();
    const n = await t.db
      .selectFrom('notifications')
      .selectAll()
      .where('operation_id', '=', id!)
      .executeTakeFirstOrThrow();
    for (const text of [op!.lastErrorMessage!, ev.message!, JSON.stringify(ev.context), n.subject, n.body])
      expect(text).not.toContain('hunter2');
    expect(op!.lastErrorMessage!.length).toBeLessThan(MAX_MESSAGE + 100);
    expect(n.subject.length).toBeLessThan(MAX_SUBJECT + 100);
    expect(n.dedup_key).toBe('stall_recovered:x:STALLED');
  });

  it('refuses a bad delay before sending anything', async () => {
    const [id] = await seed('unpack', 1, { status: 'in_progress', attempt: 1 });
    await expect(recoverStalledMany(t.db, 'unpack', [row(id!, 1, 'stall', { delayMs: -1 })])).rejects.toThrow(
      /delayMs/,
    );
    expect(await readOperation(t.db, 'unpack', id!)).toMatchObject({ status: 'in_progress', attempt: 1 });
  });

  it('1 000 rows in one statement', async () => {
    const ids = await seed('raw_data_package', 1000, { status: 'in_progress', attempt: 1 });
    const applied = await recoverStalledMany(
      t.db,
      'raw_data_package',
      ids.map((id) => row(id, 1, 'stall')),
    );
    expect(applied.size).toBe(1000);
  });
});

describe('keyed statements find their rows by primary key, whatever the statistics', () => {
  it('a stall chunk, its recovery and a completion read their own rows, not every row in progress', async () => {
    // Statistics taken while nothing was in progress, then 3 000 rows in progress: the planner took
    // the partial in-progress index for the cheaper path to one row and read all 3 000 per lookup.
    // A schema of its own: the statistics must not see the other tests' rows.
    await using t = await createTestDatabase('db_stall_plan', { locations: true });
    const insert = (status: string, n: number) =>
      sql<{ id: string }>`
      INSERT INTO raw_data_packages (name, source_location_id, buffer_location_id, relative_path, status, claimed_by, started_at, last_seen_at)
      SELECT ${status} || '-' || g || '-' || random(), ${t.locations.source}, ${t.locations.buffer}, 'x', ${status}, 'w', now(), now()
      FROM generate_series(1, ${n}) g RETURNING id::text AS id`.execute(t.db);
    await insert('completed', 100);
    await sql`ANALYZE raw_data_packages`.execute(t.db);
    const { rows } = await insert('in_progress', 3000);
    const chunk = rows.slice(0, 10).map((r) => ({ id: r.id, attempt: 0 }));
    // The statements as sent, through a pool that records them.
    await using rec = recording(t);
    const { sent } = rec;
    {
      const { locked } = await rec.database.db
        .transaction()
        .execute((trx) => lockInProgressMany(trx, 'raw_data_package', chunk));
      expect(locked.map((r) => r.id)).toEqual(chunk.map((r) => r.id));
      const lock = sent.find((s) => s.text.includes('FOR UPDATE SKIP LOCKED'))!;
      // Planned and run again on rows still in progress (the lock above was committed, not applied).
      const recover = { text: '', values: [] as unknown[] };
      await rec.database.db.transaction().execute(async (trx) => {
        await recoverStalledMany(
          trx,
          'raw_data_package',
          chunk.map((r) => row(r.id, 0, 'stall')),
        );
        Object.assign(
          recover,
          sent.find((s) => s.text.includes('jsonb_array_elements'))!,
        );
      });
      const later = rows.slice(10, 20).map((r) => ({ id: r.id, attempt: 0 }));
      const json = JSON.parse(
        recover.values.find((v) => typeof v === 'string' && v.startsWith('[['))! as string,
      ) as unknown[][];
      json.forEach((r, i) => (r[0] = later[i]!.id));
      recover.values = recover.values.map((v) =>
        typeof v === 'string' && v.startsWith('[[') ? JSON.stringify(json) : v,
      );
      await complete(rec.database.db, { type: 'raw_data_package', id: rows[20]!.id, attempt: 0 });
      const completion = sent.at(-1)!;
      for (const [what, statement, lookups] of [
        ['stall lock', lock, chunk.length],
        ['batched recovery', recover, later.length],
        ['completion', { ...completion, values: [rows[21]!.id, ...completion.values.slice(1)] }, 1],
      ] as const) {
        const scans = await rec.scans(statement, 'raw_data_packages');
        expect(scans.length, what).toBeGreaterThan(0);
        for (const n of scans) {
          expect(n['Index Name'], what).toBe('raw_data_packages_pkey');
          // One row per lookup: the statement's own rows, not the 3 000 in progress.
          expect(Number(n['Actual Rows']) * Number(n['Actual Loops']), what).toBeLessThanOrEqual(lookups);
        }
      }
    }
  });
});
