import { readOperation } from '@ccat/db';
import { createTestDatabase, type SeededTestDatabase, seedOperation, sideCounts } from '@ccat/db/testing';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyStallRecoveries,
  builtinHandlers,
  createHandlerRegistry,
  dedupKey,
  recoveryPolicySchema,
  type RecoveryDeps,
  type StallTask,
} from '../src/index.js';
import { captureLogs } from '@ccat/test-support';

let env: SeededTestDatabase;
let deps: RecoveryDeps;
beforeAll(async () => {
  env = await createTestDatabase('rh_stall_batch', { locations: true });
  deps = {
    db: env.database.db,
    registry: createHandlerRegistry(),
    policy: recoveryPolicySchema.parse({ defaultMaxRetries: 2, backoff: { baseMs: 10_000, maxMs: 60_000 } }),
    logger: captureLogs().logger,
    random: () => 0.5,
  };
});
afterAll(async () => {
  await env?.close();
});

const seed = (n: number, state: Parameters<typeof seedOperation>[3]) =>
  Promise.all(
    Array.from({ length: n }, () => seedOperation(env.database.db, env.locations, 'data_transfer', state)),
  );
const task = (id: string, attempt = 1, reason: StallTask['reason'] = 'heartbeat_expired'): StallTask => ({
  ref: { type: 'data_transfer', id, attempt },
  reason,
  details: { overdueMs: 5 },
});
const own = (id: string) => task(id, 1, 'progress_stalled');

describe('applyStallRecoveries', () => {
  it('decides per row as applyStallRecovery does; rows that moved on are left alone', async () => {
    const [fresh, worn, movedOn] = await seed(3, { status: 'in_progress', attempt: 1, retryCount: 0 });
    await env.database.db
      .updateTable('data_transfers')
      .set({ retry_count: 2 })
      .where('id', '=', worn!)
      .execute();
    await env.database.db
      .updateTable('data_transfers')
      .set({ attempt: 2 })
      .where('id', '=', movedOn!)
      .execute();
    const before = await sideCounts(env.database.db);
    const out = await applyStallRecoveries(
      deps,
      'data_transfer',
      [own(fresh!), own(worn!), own(movedOn!)],
      'mon',
    );
    expect(out.map((o) => o.kind)).toEqual(['stall_recovered', 'stall_exhausted', 'not_in_progress']);
    expect(out[0]).toMatchObject({
      delayMs: 5000,
      operation: { status: 'pending', attempt: 2, retryCount: 1 },
    });
    expect(await readOperation(env.database.db, 'data_transfer', worn!)).toMatchObject({
      status: 'failed',
      lastErrorCode: 'STALLED_TOO_OFTEN',
    });
    expect(await sideCounts(env.database.db)).toEqual({
      events: before.events + 2,
      notifications: before.notifications + 2,
    });
    const notes = await env.database.db
      .selectFrom('notifications')
      .select(['operation_id', 'dedup_key', 'level'])
      .where('operation_id', 'in', [fresh!, worn!])
      .orderBy('operation_id')
      .execute();
    expect(notes.map((n) => [String(n.operation_id), n.dedup_key, n.level])).toEqual([
      [fresh, dedupKey('stall_recovered', 'data_transfer', 'STALLED'), 'WARNING'],
      [worn, dedupKey('stall_exhausted', 'data_transfer', 'STALLED_TOO_OFTEN'), 'ERROR'],
    ]);
  });

  it('a process death: shared stalls counted apart (isolated from the 2nd), alone ones use retries, then POISON_OPERATION', async () => {
    const [first, second, alone, poison] = await seed(4, {
      status: 'in_progress',
      attempt: 1,
      retryCount: 2,
    });
    const set = (id: string, v: { stall_count: number; run_alone: boolean }) =>
      env.database.db.updateTable('data_transfers').set(v).where('id', '=', id).execute();
    await set(second!, { stall_count: 1, run_alone: false });
    await set(alone!, { stall_count: 2, run_alone: true });
    await set(poison!, { stall_count: 2, run_alone: true });
    await env.database.db
      .updateTable('data_transfers')
      .set({ retry_count: 1 })
      .where('id', '=', alone!)
      .execute();
    const out = await applyStallRecoveries(
      deps,
      'data_transfer',
      [task(first!), task(second!), task(alone!), { ...task(poison!), reason: 'no_heartbeat' }],
      'mon',
    );
    expect(out.map((o) => o.kind)).toEqual([
      'stall_recovered',
      'stall_recovered',
      'stall_recovered',
      'stall_exhausted',
    ]);
    const read = (id: string) => readOperation(env.database.db, 'data_transfer', id);
    expect(await read(first!)).toMatchObject({
      status: 'pending',
      retryCount: 2,
      stallCount: 1,
      runAlone: false,
    });
    expect(await read(second!)).toMatchObject({
      status: 'pending',
      retryCount: 2,
      stallCount: 2,
      runAlone: true,
    });
    expect(await read(alone!)).toMatchObject({
      status: 'pending',
      retryCount: 2,
      stallCount: 2,
      runAlone: true,
    });
    expect(await read(poison!)).toMatchObject({ status: 'failed', lastErrorCode: 'POISON_OPERATION' });
    const notes = await env.database.db
      .selectFrom('notifications')
      .select(['operation_id', 'level', 'subject'])
      .where('operation_id', 'in', [first!, second!, alone!, poison!])
      .where('level', '=', 'ERROR')
      .execute();
    expect(notes.map((n) => String(n.operation_id))).toEqual([poison]);
    expect(notes[0]!.subject).toContain('crashed every worker process that ran it alone');
    const ev = await env.database.db
      .selectFrom('operation_events')
      .select(['operation_id', 'context'])
      .where('operation_id', '=', first!)
      .where('event', '=', 'stall_recovered')
      .executeTakeFirstOrThrow();
    expect(ev.context).toMatchObject({ counted: 'shared', stallCount: 1, runAlone: false, retryCount: 2 });
  });

  it('two callers racing over the same 2 000 stalls in opposite orders recover each exactly once', async () => {
    const ids = await seed(2000, { status: 'in_progress', attempt: 1 });
    const tasks = ids.map((id) => task(id));
    const chunks = (list: StallTask[]) =>
      Array.from({ length: 4 }, (_, i) => list.slice(i * 500, (i + 1) * 500));
    const runs = [...chunks(tasks), ...chunks([...tasks].reverse())].map((c) =>
      applyStallRecoveries(deps, 'data_transfer', c, 'mon'),
    );
    const outcomes = (await Promise.all(runs)).flat();
    expect(outcomes.filter((o) => o.kind === 'stall_recovered')).toHaveLength(2000);
    const events = await env.database.db
      .selectFrom('operation_events')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('operation_id', 'in', ids)
      .where('event', '=', 'stall_recovered')
      .executeTakeFirstOrThrow();
    expect(Number(events.n)).toBe(2000);
  });

  it('one stall named twice in a chunk is recovered once; the repeat finds it moved on', async () => {
    const [id] = await seed(1, { status: 'in_progress', attempt: 1 });
    const before = await sideCounts(env.database.db);
    // The same stall under two members (`…:1` and `…:01` parse alike), or one task given twice.
    const out = await applyStallRecoveries(deps, 'data_transfer', [task(id!), task(id!), own(id!)], 'mon');
    expect(out.map((o) => o.kind)).toEqual(['stall_recovered', 'not_in_progress', 'not_in_progress']);
    expect(await sideCounts(env.database.db)).toEqual({
      events: before.events + 1,
      notifications: before.notifications + 1,
    });
  });

  it('a stale attempt beside its row’s current attempt, locked elsewhere: busy only for the current one', async () => {
    const [id] = await seed(1, { status: 'in_progress', attempt: 2 });
    const holder = await env.database.db.connection().execute(async (conn) => {
      await sql`BEGIN`.execute(conn);
      await sql`SELECT id FROM data_transfers WHERE id = ${id!} FOR UPDATE`.execute(conn);
      try {
        return await applyStallRecoveries(deps, 'data_transfer', [task(id!, 1), task(id!, 2)], 'mon');
      } finally {
        await sql`ROLLBACK`.execute(conn);
      }
    });
    expect(holder.map((o) => o.kind)).toEqual(['not_in_progress', 'busy']);
  });

  it('refuses a type with a custom handler', async () => {
    const custom = builtinHandlers().map(({ table: _table, ...h }) => h);
    const d = { ...deps, registry: createHandlerRegistry(custom) };
    await expect(applyStallRecoveries(d, 'data_transfer', [], 'mon')).rejects.toThrow(
      /custom recovery handler/,
    );
  });
});
