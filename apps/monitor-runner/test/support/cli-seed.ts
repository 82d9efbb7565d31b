// A database for the CLI tests, in every status, built with the real fenced transitions (only the
// starting in_progress rows are forced with the testing fixtures), plus outbox notifications in every
// status. The expected figures below follow from this seed; the tests assert them.
import {
  claim,
  complete,
  dispatch,
  manualRetry,
  markFailed,
  recoverStalled,
  resetForRetry,
  type Database,
  type ErrorInfo,
  type OperationRef,
  type OperationType,
} from '@ccat/db';
import { seedLocations, seedOperation } from '@ccat/db/testing';
import { sql, type Kysely } from 'kysely';

const WORKER = 'seed-worker';
/** Write the transition's default event (retry_scheduled, permanent_failure, stall_recovered, manual_retry). */
const withEvent = { event: { workerId: WORKER } };

const err = (code: string, message: string, retryable = true): ErrorInfo => ({
  code,
  message,
  errorClass: 'SeedError',
  retryable,
});

export interface Seeded {
  /** Operation ids by their letter in the table of cli.test.ts. */
  readonly ids: Readonly<
    Record<'A' | 'B' | 'C' | 'D' | 'E' | 'F' | 'G' | 'H' | 'I' | 'J' | 'K' | 'L' | 'M' | 'N', string>
  >;
}

export async function seedCliDatabase(db: Kysely<Database>): Promise<Seeded> {
  const locs = await seedLocations(db);
  const running = async (type: OperationType): Promise<OperationRef> => ({
    type,
    id: await seedOperation(db, locs, type, {
      status: 'in_progress',
      attempt: 0,
      claimedBy: WORKER,
      lastSeenAgoS: 1,
    }),
    attempt: 0,
  });
  /** pending(k) → scheduled → in_progress(k): the next attempt runs. */
  const runAgain = async (ref: OperationRef): Promise<OperationRef> => {
    const next = { ...ref, attempt: ref.attempt + 1 };
    expectApplied(await dispatch(db, ref.type, ref.id), 'dispatch');
    expectApplied(await claim(db, next, { workerId: WORKER }), 'claim');
    return next;
  };

  // A: a retryable failure, then success.
  const a = await running('raw_data_package');
  expectApplied(
    await resetForRetry(db, a, { delayMs: 0, error: err('CHECKSUM_MISMATCH', 'sha256 differs') }, withEvent),
    'A retry',
  );
  expectApplied(await complete(db, await runAgain(a)), 'A complete');
  // B: a stall, recovered, then success.
  const b = await running('raw_data_package');
  expectApplied(await recoverStalled(db, b, {}, withEvent), 'B stall');
  expectApplied(await complete(db, await runAgain(b)), 'B complete');
  // J: success first time.
  const j = await running('raw_data_package');
  expectApplied(await complete(db, j), 'J complete');
  // C: retried, then failed for good.
  const c = await running('data_transfer');
  expectApplied(
    await resetForRetry(
      db,
      c,
      { delayMs: 0, error: err('CONNECTION_RESET', 'peer reset the connection') },
      withEvent,
    ),
    'C retry',
  );
  expectApplied(
    await markFailed(
      db,
      await runAgain(c),
      { error: err('CONNECTION_RESET', 'peer reset the connection again', false) },
      withEvent,
    ),
    'C failed',
  );
  // D, E: failed at once with CHECKSUM_MISMATCH (the bulk retry's targets).
  const d = await running('data_transfer');
  expectApplied(
    await markFailed(
      db,
      d,
      { error: err('CHECKSUM_MISMATCH', 'checksum mismatch on file 3', false) },
      withEvent,
    ),
    'D',
  );
  const e = await running('data_transfer');
  expectApplied(
    await markFailed(
      db,
      e,
      { error: err('CHECKSUM_MISMATCH', 'checksum mismatch on file 7', false) },
      withEvent,
    ),
    'E',
  );
  // F: a stall, then stalled too often.
  const f = await running('unpack');
  expectApplied(await recoverStalled(db, f, {}, withEvent), 'F stall');
  expectApplied(
    await markFailed(
      db,
      await runAgain(f),
      { error: err('STALLED_TOO_OFTEN', 'stalled: no heartbeat before its deadline', false) },
      { event: { event: 'stall_exhausted', workerId: 'seed-monitor' } },
    ),
    'F exhausted',
  );
  // L: failed, then retried by hand (now pending).
  const l = await running('unpack');
  expectApplied(
    await markFailed(db, l, { error: err('UNPACK_FAILED', 'tar: unexpected EOF', false) }, withEvent),
    'L failed',
  );
  expectApplied(
    await manualRetry(db, 'unpack', l.id, {}, { event: { workerId: 'cli:someone' } }),
    'L manual',
  );
  // M: a retry three days ago: outside the default 24h window, inside 7d.
  const m = await running('long_term_archive_transfer');
  expectApplied(
    await resetForRetry(db, m, { delayMs: 3_600_000, error: err('TIMED_OUT', 'copy timed out') }, withEvent),
    'M',
  );
  await sql`UPDATE operation_events SET created_at = now() - interval '3 days'
    WHERE operation_type = 'long_term_archive_transfer' AND operation_id = ${m.id}`.execute(db);
  // Untouched: G pending, H scheduled; I, K, N in progress (their heartbeats are set up by the test).
  const g = await seedOperation(db, locs, 'long_term_archive_transfer', { status: 'pending' });
  const h = await seedOperation(db, locs, 'deletion', { status: 'scheduled', scheduledAgoS: 5 });
  const i = await running('deletion');
  const k = await running('data_transfer_package');
  const n = await running('unpack');

  // Outbox rows: 3 sent, 1 failed, 2 digested, 1 pending in the window; 1 failed three days ago.
  const note = (status: 'sent' | 'failed' | 'digested' | 'pending', kind: string) => ({
    level: 'ERROR' as const,
    event_kind: kind,
    subject: `${kind} (seed)`,
    body: 'seeded for the CLI tests',
    context: '{}',
    status,
  });
  await db
    .insertInto('notifications')
    .values([
      note('sent', 'permanent_failure'),
      note('sent', 'permanent_failure'),
      note('sent', 'stall_exhausted'),
      note('failed', 'permanent_failure'),
      note('digested', 'permanent_failure'),
      note('digested', 'permanent_failure'),
      note('pending', 'stall_recovered'),
    ])
    .execute();
  const old = await db
    .insertInto('notifications')
    .values(note('failed', 'old'))
    .returning('id')
    .executeTakeFirstOrThrow();
  await sql`UPDATE notifications SET created_at = now() - interval '3 days' WHERE id = ${old.id}`.execute(db);

  return {
    ids: {
      A: a.id,
      B: b.id,
      C: c.id,
      D: d.id,
      E: e.id,
      F: f.id,
      G: g,
      H: h,
      I: i.id,
      J: j.id,
      K: k.id,
      L: l.id,
      M: m.id,
      N: n.id,
    },
  };
}

function expectApplied(result: { applied: boolean }, what: string): void {
  if (!result.applied) throw new Error(`seed step not applied: ${what}`);
}
