import { ValidationError } from '@ccat/errors';
import { sql, type KyselyPlugin } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  OPERATION_TYPES,
  readOperation,
  TransitionBatcher,
  type NextStage,
  type OperationRef,
  type OperationType,
} from '../src/index.js';
import { createTestDatabase, seedOperation, sideCounts, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_batcher', { max: 6, locations: true });
});
afterAll(async () => {
  await t?.close();
});

/** The database seen through a counter of the statements sent. */
function counted() {
  const counter = { statements: 0 };
  const plugin: KyselyPlugin = {
    transformQuery: (args) => args.node,
    transformResult: (args) => {
      counter.statements++;
      return Promise.resolve(args.result);
    },
  };
  return { db: t.db.withPlugin(plugin), counter };
}

const seed = (type: OperationType, n: number, state: Parameters<typeof seedOperation>[3]) =>
  Promise.all(Array.from({ length: n }, () => seedOperation(t.db, t.locations, type, state)));

describe('TransitionBatcher', () => {
  it.each(OPERATION_TYPES)(
    '%s: concurrent claims and completions share statements, each fenced on its own row',
    async (type) => {
      const { db, counter } = counted();
      const batcher = new TransitionBatcher(db, { maxInFlight: 1 });
      const ids = await seed(type, 10, { status: 'scheduled', attempt: 2 });
      const [movedOn] = await seed(type, 1, { status: 'scheduled', attempt: 3 });
      const [pending] = await seed(type, 1, { status: 'pending', attempt: 2 });
      const refs: OperationRef[] = ids.map((id) => ({ type, id, attempt: 2 }));
      const before = await sideCounts(t.db);

      const claims = await Promise.all([
        ...refs.map((r) => batcher.claim(r, { workerId: `w-${r.id}` })),
        batcher.claim({ type, id: movedOn!, attempt: 2 }, { workerId: 'late' }),
        batcher.claim({ type, id: pending!, attempt: 2 }, { workerId: 'late' }),
      ]);
      expect(claims.map((c) => c.applied)).toEqual([...refs.map(() => true), false, false]);
      expect(counter.statements).toBe(1);
      for (const r of refs) {
        expect(await readOperation(t.db, type, r.id)).toMatchObject({
          status: 'in_progress',
          attempt: 2,
          claimedBy: `w-${r.id}`,
          progressBytes: '0',
          finishedAt: null,
        });
      }
      expect(await readOperation(t.db, type, movedOn!)).toMatchObject({ status: 'scheduled', attempt: 3 });
      expect(await readOperation(t.db, type, pending!)).toMatchObject({ status: 'pending', claimedBy: null });
      expect(await sideCounts(t.db)).toEqual(before);

      counter.statements = 0;
      const done = await Promise.all([
        ...refs.map((r, i) =>
          batcher.complete(r, {
            event: { workerId: 'w', context: { bytes: i, note: 'a "quoted" \\ value' } },
          }),
        ),
        batcher.complete({ type, id: movedOn!, attempt: 2 }, { event: { workerId: 'zombie' } }),
      ]);
      expect(done.map((d) => d.applied)).toEqual([...refs.map(() => true), false]);
      expect(counter.statements).toBe(1);
      const eventIds = done.slice(0, refs.length).map((d) => d.eventId);
      expect(new Set(eventIds).size).toBe(refs.length);
      const events = await t.db
        .selectFrom('operation_events')
        .select(['id', 'operation_id', 'attempt', 'event', 'worker_id', 'context', 'error_code', 'message'])
        .where('operation_type', '=', type)
        .where('id', 'in', eventIds as string[])
        .orderBy('id')
        .execute();
      expect(events).toHaveLength(refs.length);
      for (const e of events) {
        const i = ids.indexOf(String(e.operation_id));
        expect(done[i]!.eventId).toBe(String(e.id));
        expect(e).toMatchObject({
          attempt: 2,
          event: 'completed',
          worker_id: 'w',
          error_code: null,
          message: null,
        });
        expect(e.context).toEqual({ bytes: i, note: 'a "quoted" \\ value' });
      }
      for (const r of refs)
        expect(await readOperation(t.db, type, r.id)).toMatchObject({ status: 'completed' });
    },
  );

  it('calls that wait for a flight ride together; the same row twice never shares a statement', async () => {
    const { db, counter } = counted();
    const batcher = new TransitionBatcher(db, { maxInFlight: 1, maxBatch: 4 });
    const ids = await seed('deletion', 9, { status: 'scheduled' });
    const first = batcher.claim({ type: 'deletion', id: ids[0]!, attempt: 0 }, { workerId: 'a' });
    // The next tick: the first statement is in flight, so these wait and go out in batches of 4.
    await new Promise((r) => setImmediate(r));
    const rest = ids
      .slice(1)
      .map((id) => batcher.claim({ type: 'deletion', id, attempt: 0 }, { workerId: 'b' }));
    // Row 8 claimed twice more by this process (duplicate jobs): of the three, exactly one wins.
    const twice = [0, 1].map(() =>
      batcher.claim({ type: 'deletion', id: ids[8]!, attempt: 0 }, { workerId: 'c' }),
    );
    const results = await Promise.all([first, ...rest, ...twice]);
    expect(results.slice(0, 8).every((r) => r.applied)).toBe(true);
    expect(results.slice(8).filter((r) => r.applied)).toHaveLength(1);
    // The first alone, then [1-4], [5-8], and each repeat of row 8 in a statement of its own.
    expect(counter.statements).toBe(5);
    expect(batcher.pending).toBe(0);
  });

  it('a row the server rejects fails alone; the others in its statement apply', async () => {
    const ids = await seed('unpack', 5, { status: 'scheduled' });
    const bad = ids[2]!;
    await sql
      .raw(
        `CREATE FUNCTION reject_one() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.id = ${Number(bad)} THEN RAISE EXCEPTION 'row % refused by policy', NEW.id; END IF; RETURN NEW; END $$`,
      )
      .execute(t.db);
    await sql
      .raw(
        'CREATE TRIGGER reject_one BEFORE UPDATE ON data_transfers FOR EACH ROW EXECUTE FUNCTION reject_one()',
      )
      .execute(t.db);
    try {
      const batcher = new TransitionBatcher(t.db);
      const results = await Promise.allSettled(
        ids.map((id) => batcher.claim({ type: 'unpack', id, attempt: 0 }, { workerId: 'w' })),
      );
      results.forEach((r, i) => {
        if (ids[i] === bad) {
          expect(r.status).toBe('rejected');
          expect(String((r as PromiseRejectedResult).reason.message)).toMatch(/refused by policy/);
        } else expect(r).toEqual({ status: 'fulfilled', value: { applied: true } });
      });
      expect(await readOperation(t.db, 'unpack', bad)).toMatchObject({ status: 'scheduled' });
    } finally {
      await sql.raw('DROP TRIGGER reject_one ON data_transfers').execute(t.db);
      await sql.raw('DROP FUNCTION reject_one()').execute(t.db);
    }
  });

  it('a value PostgreSQL cannot take fails only the call that sent it', async () => {
    const ids = await seed('data_transfer', 3, { status: 'in_progress' });
    const batcher = new TransitionBatcher(t.db);
    const results = await Promise.allSettled(
      ids.map((id, i) =>
        batcher.complete(
          { type: 'data_transfer', id, attempt: 0 },
          // Not a boolean: the array cast fails (22P02) and rolls the whole statement back.
          { event: { workerId: 'w', retryable: (i === 1 ? 'perhaps' : true) as boolean } },
        ),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(await readOperation(t.db, 'data_transfer', ids[1]!)).toMatchObject({ status: 'in_progress' });
    expect(await readOperation(t.db, 'data_transfer', ids[0]!)).toMatchObject({ status: 'completed' });
  });

  describe('completions with a next stage', () => {
    /** data_transfer's next stage (unpack becomes pending), recording each call; 1/0 (22012) for `bad`. */
    const nextStage = (bad?: string) => {
      const calls: string[][] = [];
      const next: NextStage = async (trx, refs) => {
        const ids = refs.map((r) => r.id);
        calls.push(ids);
        await sql`UPDATE data_transfers SET unpack_status = 'pending'
          WHERE id = ANY(${ids}::bigint[]) AND unpack_status IS NULL`.execute(trx);
        // Not 1 / 0: with a generic plan (a prepared statement's sixth run) PostgreSQL folds a
        // constant THEN arm while planning and raises whatever the condition.
        await sql`SELECT CASE WHEN ${bad ?? '0'}::bigint = ANY(${ids}::bigint[]) THEN 1 / (cardinality(${ids}::bigint[]) * 0) END`.execute(
          trx,
        );
      };
      return { calls, options: { nextStage: { data_transfer: next } } };
    };
    const byId = (a: string, b: string) => Number(a) - Number(b);
    const unpackStatus = async (id: string) =>
      (
        await t.db
          .selectFrom('data_transfers')
          .select('unpack_status')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).unpack_status;

    it('many completions and their next stage commit in one transaction; a fence miss creates nothing', async () => {
      // Sorted: a batch goes in id order.
      const ids = (await seed('data_transfer', 5, { status: 'in_progress' })).sort(byId);
      const [moved] = await seed('data_transfer', 1, { status: 'in_progress', attempt: 1 });
      const { calls, options } = nextStage();
      const batcher = new TransitionBatcher(t.db, options);
      const results = await Promise.all(
        [...ids, moved!].map((id) =>
          batcher.complete({ type: 'data_transfer', id, attempt: 0 }, { event: { workerId: 'w' } }),
        ),
      );
      expect(results.map((r) => r.applied)).toEqual([true, true, true, true, true, false]);
      expect(calls).toEqual([ids]);
      for (const id of ids) expect(await unpackStatus(id)).toBe('pending');
      expect(await unpackStatus(moved!)).toBeNull();
      expect(await readOperation(t.db, 'data_transfer', moved!)).toMatchObject({ status: 'in_progress' });
      // A second completion of the same attempt is fenced out and creates nothing again.
      expect(await batcher.complete({ type: 'data_transfer', id: ids[0]!, attempt: 0 })).toEqual({
        applied: false,
      });
      expect(calls).toHaveLength(1);
    });

    it('a row whose next stage fails fails alone: its completion rolls back, the others commit once', async () => {
      const ids = (await seed('data_transfer', 4, { status: 'in_progress' })).sort(byId);
      const bad = ids[2]!;
      const { calls, options } = nextStage(bad);
      const batcher = new TransitionBatcher(t.db, options);
      const results = await Promise.allSettled(
        ids.map((id) =>
          batcher.complete({ type: 'data_transfer', id, attempt: 0 }, { event: { workerId: 'w' } }),
        ),
      );
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
      // The batch (rolled back), then each row alone.
      expect(calls).toEqual([ids, ...ids.map((id) => [id])]);
      expect(await readOperation(t.db, 'data_transfer', bad)).toMatchObject({ status: 'in_progress' });
      expect(await unpackStatus(bad)).toBeNull();
      for (const id of ids.filter((i) => i !== bad)) {
        expect(await readOperation(t.db, 'data_transfer', id)).toMatchObject({ status: 'completed' });
        expect(await unpackStatus(id)).toBe('pending');
      }
      const events = await t.db
        .selectFrom('operation_events')
        .select((eb) => eb.fn.countAll<string>().as('n'))
        .where('operation_type', '=', 'data_transfer')
        .where('operation_id', 'in', ids)
        .executeTakeFirstOrThrow();
      expect(Number(events.n)).toBe(3);
    });

    it('maxBatch 1 and a notification run the next stage in the completion transaction too', async () => {
      const ids = await seed('data_transfer', 2, { status: 'in_progress' });
      const { calls, options } = nextStage();
      const single = new TransitionBatcher(t.db, { ...options, maxBatch: 1 });
      await expect(single.complete({ type: 'data_transfer', id: ids[0]!, attempt: 0 })).resolves.toEqual({
        applied: true,
      });
      const r = await new TransitionBatcher(t.db, options).complete(
        { type: 'data_transfer', id: ids[1]!, attempt: 0 },
        { notification: { level: 'INFO', eventKind: 'completed', subject: 'done', body: 'done' } },
      );
      expect(r.applied).toBe(true);
      expect(calls).toEqual([[ids[0]], [ids[1]]]);
      for (const id of ids) expect(await unpackStatus(id)).toBe('pending');
    });
  });

  describe('completions with their own bookkeeping (finalize)', () => {
    /** deletion's bookkeeping (deleted_at), recording each call; a plain Error for `bad`. */
    const marker = (calls: string[], bad?: string) => (id: string) => async (trx: typeof t.db) => {
      calls.push(id);
      await trx
        .updateTable('physical_copies')
        .set({ deleted_at: sql<Date>`now()` })
        .where('id', '=', id)
        .execute();
      if (id === bad) throw new Error(`bookkeeping of ${id} failed`);
    };
    const deletedAt = async (id: string) =>
      (
        await t.db
          .selectFrom('physical_copies')
          .select('deleted_at')
          .where('id', '=', id)
          .executeTakeFirstOrThrow()
      ).deleted_at;

    it('rides the batch: one statement, one transaction, only for rows whose completion applied', async () => {
      const ids = (await seed('deletion', 5, { status: 'in_progress' })).sort(
        (a, b) => Number(a) - Number(b),
      );
      const [moved] = await seed('deletion', 1, { status: 'in_progress', attempt: 1 });
      const calls: string[] = [];
      const mark = marker(calls);
      const { db, counter } = counted();
      const batcher = new TransitionBatcher(db);
      const results = await Promise.all(
        [...ids, moved!].map((id) =>
          batcher.complete({ type: 'deletion', id, attempt: 0 }, { event: { workerId: 'w' } }, mark(id)),
        ),
      );
      expect(results.map((r) => r.applied)).toEqual([true, true, true, true, true, false]);
      // The completion statement, then one bookkeeping statement per applied row, in id order.
      expect(calls).toEqual(ids);
      expect(counter.statements).toBe(1 + ids.length);
      for (const id of ids) expect(await deletedAt(id)).not.toBeNull();
      // The fenced-out attempt's bookkeeping never ran.
      expect(await deletedAt(moved!)).toBeNull();
    });

    it('a row whose bookkeeping throws fails alone with its own error; the others commit once', async () => {
      const ids = (await seed('deletion', 4, { status: 'in_progress' })).sort(
        (a, b) => Number(a) - Number(b),
      );
      const bad = ids[1]!;
      const calls: string[] = [];
      const mark = marker(calls, bad);
      const batcher = new TransitionBatcher(t.db);
      const results = await Promise.allSettled(
        ids.map((id) => batcher.complete({ type: 'deletion', id, attempt: 0 }, {}, mark(id))),
      );
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toEqual(new Error(`bookkeeping of ${bad} failed`));
      // The batch up to the failure (rolled back), then each row alone.
      expect(calls).toEqual([ids[0], bad, ...ids]);
      expect(await readOperation(t.db, 'deletion', bad)).toMatchObject({ status: 'in_progress' });
      expect(await deletedAt(bad)).toBeNull();
      for (const id of ids.filter((i) => i !== bad)) {
        expect(await readOperation(t.db, 'deletion', id)).toMatchObject({ status: 'completed' });
        expect(await deletedAt(id)).not.toBeNull();
      }
    });

    it('maxBatch 1 runs it in the completion transaction too', async () => {
      const [id] = await seed('deletion', 1, { status: 'in_progress' });
      const calls: string[] = [];
      const single = new TransitionBatcher(t.db, { maxBatch: 1 });
      await expect(
        single.complete({ type: 'deletion', id: id!, attempt: 0 }, {}, marker(calls, id)(id!)),
      ).rejects.toThrow(`bookkeeping of ${id} failed`);
      expect(await readOperation(t.db, 'deletion', id!)).toMatchObject({ status: 'in_progress' });
      expect(await deletedAt(id!)).toBeNull();
      await expect(
        single.complete({ type: 'deletion', id: id!, attempt: 0 }, {}, marker(calls)(id!)),
      ).resolves.toEqual({
        applied: true,
      });
      expect(await deletedAt(id!)).not.toBeNull();
    });
  });

  describe('a completion record (the bookkeeping written by the completion statement itself)', () => {
    const SHA = 'ab'.repeat(32);
    const bookkeeping = async (type: OperationType, id: string) => {
      switch (type) {
        case 'raw_data_package':
        case 'data_transfer_package': {
          const table = type === 'raw_data_package' ? 'raw_data_packages' : 'data_transfer_packages';
          const r = await t.db
            .selectFrom(table)
            .select(['sha256', 'size_bytes'])
            .where('id', '=', id)
            .executeTakeFirstOrThrow();
          return r.sha256 === null ? null : `${r.sha256}/${String(r.size_bytes)}`;
        }
        case 'long_term_archive_transfer':
          return (
            await t.db
              .selectFrom('long_term_archive_transfers')
              .select('verified_at')
              .where('id', '=', id)
              .executeTakeFirstOrThrow()
          ).verified_at === null
            ? null
            : 'verified';
        case 'deletion':
          return (
            await t.db
              .selectFrom('physical_copies')
              .select('deleted_at')
              .where('id', '=', id)
              .executeTakeFirstOrThrow()
          ).deleted_at === null
            ? null
            : 'deleted';
        default:
          return null;
      }
    };
    const RECORDED = {
      raw_data_package: {
        record: { checksum: { sha256: SHA, sizeBytes: 4_000_000_000 } },
        shows: `${SHA}/4000000000`,
      },
      data_transfer_package: {
        record: { checksum: { sha256: SHA.toUpperCase(), sizeBytes: 0 } },
        shows: `${SHA}/0`,
      },
      long_term_archive_transfer: { record: { verified: true }, shows: 'verified' },
      deletion: { record: { deleted: true }, shows: 'deleted' },
    } as const;

    it.each(Object.keys(RECORDED) as (keyof typeof RECORDED)[])(
      '%s: one statement for the batch; written only where the fenced completion applied',
      async (type) => {
        const { record, shows } = RECORDED[type];
        const ids = await seed(type, 4, { status: 'in_progress' });
        const [moved] = await seed(type, 1, { status: 'in_progress', attempt: 1 });
        const [bare] = await seed(type, 1, { status: 'in_progress' });
        const { db, counter } = counted();
        const batcher = new TransitionBatcher(db);
        const results = await Promise.all([
          ...[...ids, moved!].map((id) =>
            batcher.complete({ type, id, attempt: 0 }, { event: { workerId: 'w' }, record }),
          ),
          batcher.complete({ type, id: bare!, attempt: 0 }),
        ]);
        expect(results.map((r) => r.applied)).toEqual([true, true, true, true, false, true]);
        expect(counter.statements).toBe(1);
        for (const id of ids) expect(await bookkeeping(type, id)).toBe(shows);
        // The fenced-out attempt records nothing; a completion without a record leaves the columns.
        expect(await bookkeeping(type, moved!)).toBeNull();
        expect(await bookkeeping(type, bare!)).toBeNull();
        // The single-row path (maxBatch 1, and complete()) writes the same.
        const [one] = await seed(type, 1, { status: 'in_progress' });
        const single = new TransitionBatcher(t.db, { maxBatch: 1 });
        expect(await single.complete({ type, id: one!, attempt: 1 }, { record })).toEqual({ applied: false });
        expect(await bookkeeping(type, one!)).toBeNull();
        expect(await single.complete({ type, id: one!, attempt: 0 }, { record })).toEqual({ applied: true });
        expect(await bookkeeping(type, one!)).toBe(shows);
      },
    );

    it('what is checked is what is written: own fields only, each read once (adversary)', async () => {
      const batcher = new TransitionBatcher(t.db);
      const [a, b, c, d] = await seed('long_term_archive_transfer', 4, { status: 'in_progress' });
      const [e] = await seed('deletion', 1, { status: 'in_progress' });
      // An inherited checksum is no field of the record: the deletion's own field is written.
      const inherited = Object.assign(Object.create({ checksum: { sha256: SHA, sizeBytes: 1 } }), {
        deleted: true,
      }) as object;
      // A class whose checksum is a getter on its prototype: not an own field either.
      class Verified {
        readonly verified = true as const;
        get checksum() {
          return { sha256: SHA, sizeBytes: 1 };
        }
      }
      // A getter that answers `true` once and something else after: read once.
      let reads = 0;
      const flaky = {
        get verified() {
          reads++;
          return reads === 1 ? true : { sha256: SHA };
        },
      };
      const throwing = {
        get verified(): boolean {
          throw new Error('no');
        },
      };
      const results = await Promise.allSettled([
        batcher.complete({ type: 'deletion', id: e!, attempt: 0 }, { record: inherited }),
        batcher.complete(
          { type: 'long_term_archive_transfer', id: a!, attempt: 0 },
          { record: new Verified() },
        ),
        batcher.complete(
          { type: 'long_term_archive_transfer', id: b!, attempt: 0 },
          { record: flaky as never },
        ),
        batcher.complete(
          { type: 'long_term_archive_transfer', id: c!, attempt: 0 },
          { record: throwing as never },
        ),
        batcher.complete(
          { type: 'long_term_archive_transfer', id: d!, attempt: 0 },
          { record: { verified: true } },
        ),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(ValidationError);
      expect(reads).toBe(1);
      expect(await bookkeeping('deletion', e!)).toBe('deleted');
      for (const id of [a!, b!, d!])
        expect(await bookkeeping('long_term_archive_transfer', id)).toBe('verified');
      expect(await readOperation(t.db, 'long_term_archive_transfer', c!)).toMatchObject({
        status: 'in_progress',
      });
    });

    it('a record the type does not take, or a bad value, fails that call alone with a ValidationError', async () => {
      const ids = await seed('raw_data_package', 2, { status: 'in_progress' });
      const [transfer] = await seed('data_transfer', 1, { status: 'in_progress' });
      const batcher = new TransitionBatcher(t.db);
      const results = await Promise.allSettled([
        batcher.complete(
          { type: 'raw_data_package', id: ids[0]!, attempt: 0 },
          { record: { verified: true } },
        ),
        batcher.complete(
          { type: 'raw_data_package', id: ids[0]!, attempt: 0 },
          { record: { checksum: { sha256: 'nope', sizeBytes: 1 } } },
        ),
        batcher.complete(
          { type: 'raw_data_package', id: ids[0]!, attempt: 0 },
          { record: { checksum: { sha256: SHA, sizeBytes: -1 } } },
        ),
        batcher.complete({ type: 'data_transfer', id: transfer!, attempt: 0 }, { record: { deleted: true } }),
        // What a JavaScript caller may pass past the types.
        ...[
          null,
          'x',
          { checksum: null },
          { verified: false },
          { checksum: { sha256: SHA, sizeBytes: 2 ** 53 } },
        ].map((record) =>
          batcher.complete(
            { type: 'raw_data_package', id: ids[0]!, attempt: 0 },
            { record: record as never },
          ),
        ),
        batcher.complete(
          { type: 'raw_data_package', id: ids[1]!, attempt: 0 },
          { record: { checksum: { sha256: SHA, sizeBytes: 7 } } },
        ),
      ]);
      expect(
        results.slice(0, 9).map((r) => r.status === 'rejected' && r.reason instanceof ValidationError),
      ).toEqual(Array(9).fill(true));
      expect(String((results[3] as PromiseRejectedResult).reason.message)).toMatch(/records nothing/);
      expect(results[9]).toEqual({ status: 'fulfilled', value: { applied: true } });
      expect(await readOperation(t.db, 'raw_data_package', ids[0]!)).toMatchObject({ status: 'in_progress' });
      expect(await bookkeeping('raw_data_package', ids[1]!)).toBe(`${SHA}/7`);
    });
  });

  it('bad input is refused before it joins a statement; the calls beside it still apply', async () => {
    const batcher = new TransitionBatcher(t.db);
    const [id] = await seed('raw_data_package', 1, { status: 'scheduled' });
    const [bad, good, unknown] = await Promise.allSettled([
      batcher.claim({ type: 'raw_data_package', id: id!, attempt: -1 }, { workerId: 'w' }),
      batcher.claim({ type: 'raw_data_package', id: id!, attempt: 0 }, { workerId: 'w' }),
      batcher.complete({ type: 'nope' as OperationType, id: '1', attempt: 0 }),
    ]);
    expect(bad.status === 'rejected' && bad.reason).toBeInstanceOf(ValidationError);
    expect(good).toEqual({ status: 'fulfilled', value: { applied: true } });
    expect(unknown.status === 'rejected' && unknown.reason).toBeInstanceOf(ValidationError);
    expect(() => new TransitionBatcher(t.db, { maxBatch: 0 })).toThrow(/maxBatch/);
    expect(() => new TransitionBatcher(t.db, { maxInFlight: 1.5 })).toThrow(/maxInFlight/);
  });

  it('maxBatch 1 sends each call alone; a notification takes the single-row path', async () => {
    const { db, counter } = counted();
    const rows = await seed('long_term_archive_transfer', 3, { status: 'scheduled' });
    const single = new TransitionBatcher(db, { maxBatch: 1 });
    await Promise.all(
      rows.map((id) =>
        single.claim({ type: 'long_term_archive_transfer', id, attempt: 0 }, { workerId: 'w' }),
      ),
    );
    expect(counter.statements).toBe(3);

    const batcher = new TransitionBatcher(t.db);
    const before = await sideCounts(t.db);
    const r = await batcher.complete(
      { type: 'long_term_archive_transfer', id: rows[0]!, attempt: 0 },
      {
        event: { workerId: 'w' },
        notification: { level: 'INFO', eventKind: 'completed', subject: 'done', body: 'done' },
      },
    );
    expect(r).toMatchObject({
      applied: true,
      eventId: expect.any(String),
      notificationId: expect.any(String),
    });
    expect(await sideCounts(t.db)).toEqual({
      events: before.events + 1,
      notifications: before.notifications + 1,
    });
  });
});
