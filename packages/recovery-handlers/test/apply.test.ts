import { captureLogs } from '@ccat/test-support';
import { readOperation } from '@ccat/db';
import {
  createTestDatabase,
  type SeededTestDatabase,
  seedOperation,
  sideCounts as counts,
} from '@ccat/db/testing';
import {
  ChecksumVerificationError,
  NetworkError,
  PackageError,
  UnknownOperationTypeError,
} from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyFailure,
  applyStallRecovery,
  builtinHandlers,
  createHandlerRegistry,
  createTableHandler,
  recoveryPolicySchema,
  type RecoveryDeps,
} from '../src/index.js';

let env: SeededTestDatabase;
let deps: RecoveryDeps;
let lines: Record<string, unknown>[];
beforeAll(async () => {
  env = await createTestDatabase('rh_apply', { locations: true });
  const cap = captureLogs();
  lines = cap.lines;
  deps = {
    db: env.database.db,
    registry: createHandlerRegistry(),
    policy: recoveryPolicySchema.parse({ backoff: { baseMs: 10_000, maxMs: 60_000 } }),
    logger: cap.logger,
    random: () => 0.5,
  };
});
afterAll(async () => {
  await env?.close();
});

const db = () => env.database.db;
const events = (id: string, type: string) =>
  db()
    .selectFrom('operation_events')
    .selectAll()
    .where('operation_id', '=', id)
    .where('operation_type', '=', type)
    .orderBy('id')
    .execute();
const notes = (id: string, type: string) =>
  db()
    .selectFrom('notifications')
    .selectAll()
    .where('operation_id', '=', id)
    .where('operation_type', '=', type)
    .orderBy('id')
    .execute();

describe('applyFailure', () => {
  it('a retryable error → pending with backoff; event, INFO notification and log line', async () => {
    const id = await seedOperation(db(), env.locations, 'data_transfer', {
      status: 'in_progress',
      attempt: 2,
      retryCount: 1,
    });
    const out = await applyFailure(deps, {
      ref: { type: 'data_transfer', id, attempt: 2 },
      error: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }),
      workerId: 'w1',
    });
    expect(out.kind).toBe('retry_scheduled');
    if (out.kind !== 'retry_scheduled') return;
    // retryCount 1 → ceiling 10 000·2 = 20 000; draw 0.5 → 10 000 ms.
    expect(out.delayMs).toBe(10_000);
    expect(out.operation).toMatchObject({
      status: 'pending',
      attempt: 3,
      retryCount: 2,
      lastErrorCode: 'CONNECTION_RESET',
    });
    const [ev] = await events(id, 'data_transfer');
    expect(ev).toMatchObject({
      event: 'retry_scheduled',
      attempt: 2,
      error_code: 'CONNECTION_RESET',
      error_class: 'NetworkError',
      retryable: true,
      worker_id: 'w1',
    });
    expect(ev!.context).toMatchObject({
      reason: 'retryable',
      retryCount: 2,
      maxRetries: 3,
      delayMs: 10_000,
      error: { code: 'CONNECTION_RESET' },
    });
    const [n] = await notes(id, 'data_transfer');
    expect(n).toMatchObject({
      level: 'INFO',
      event_kind: 'retry_scheduled',
      dedup_key: 'retry_scheduled:data_transfer:CONNECTION_RESET',
      status: 'pending',
    });
    const line = lines.find((l) => l['operationId'] === id && l['decision'] === 'retry_scheduled');
    expect(line).toMatchObject({
      operationType: 'data_transfer',
      attempt: 2,
      errorCode: 'CONNECTION_RESET',
      delayMs: 10_000,
      workerId: 'w1',
    });
  });

  it('a non-retryable error → failed with exactly one ERROR outbox row', async () => {
    const id = await seedOperation(db(), env.locations, 'raw_data_package', {
      status: 'in_progress',
      attempt: 0,
    });
    const out = await applyFailure(deps, {
      ref: { type: 'raw_data_package', id, attempt: 0 },
      error: new PackageError('tar: bad header', { retryable: false, code: 'ARCHIVE_CORRUPT' }),
    });
    expect(out).toMatchObject({ kind: 'permanent_failure', reason: 'non_retryable' });
    expect(await readOperation(db(), 'raw_data_package', id)).toMatchObject({
      status: 'failed',
      lastErrorCode: 'ARCHIVE_CORRUPT',
    });
    const ns = await notes(id, 'raw_data_package');
    expect(ns).toHaveLength(1);
    expect(ns[0]).toMatchObject({ level: 'ERROR', event_kind: 'permanent_failure' });
    expect(ns[0]!.subject).toBe(`raw_data_package ${id} FAILED: ARCHIVE_CORRUPT`);
    // What to do once, in the context's advice (every channel shows it in place of the catalogue's
    // generic text), not a second wording in the body.
    expect(ns[0]!.context).toMatchObject({ action: 'Marked FAILED; no more automatic retries.' });
    expect((ns[0]!.context as { advice: string }).advice).toContain('Re-create the package');
    expect((ns[0]!.context as { advice: string }).advice).toContain(
      `ccat-recovery retry raw_data_package ${id}`,
    );
    expect(ns[0]!.body).not.toMatch(/^(Done|To do|Where):/m);
    expect(
      lines.find((l) => l['operationId'] === id && l['operationType'] === 'raw_data_package'),
    ).toMatchObject({
      level: 50,
      decision: 'permanent_failure',
    });
  });

  it('retries exhausted → failed, reason retries_exhausted', async () => {
    const id = await seedOperation(db(), env.locations, 'unpack', {
      status: 'in_progress',
      attempt: 5,
      retryCount: 2,
    });
    const out = await applyFailure(deps, {
      ref: { type: 'unpack', id, attempt: 5 },
      error: new ChecksumVerificationError('sha256 differs'),
    });
    expect(out).toMatchObject({ kind: 'permanent_failure', reason: 'retries_exhausted' });
    const [ev] = await events(id, 'unpack');
    expect(ev).toMatchObject({ event: 'permanent_failure', error_code: 'CHECKSUM_MISMATCH' });
    expect(ev!.context).toMatchObject({ reason: 'retries_exhausted', maxRetries: 2 });
  });

  it('the attempt moved on → lease_lost: nothing changed, no notification, a lease_lost event', async () => {
    const id = await seedOperation(db(), env.locations, 'deletion', { status: 'pending', attempt: 4 });
    const before = await readOperation(db(), 'deletion', id);
    const out = await applyFailure(deps, {
      ref: { type: 'deletion', id, attempt: 3 },
      error: new NetworkError('late'),
      workerId: 'zombie',
    });
    expect(out.kind).toBe('lease_lost');
    expect(await readOperation(db(), 'deletion', id)).toEqual(before);
    expect(await notes(id, 'deletion')).toEqual([]);
    expect(await events(id, 'deletion')).toMatchObject([
      { event: 'lease_lost', attempt: 3, worker_id: 'zombie' },
    ]);
  });

  it('state, event and notification commit together or not at all', async () => {
    const id = await seedOperation(db(), env.locations, 'data_transfer', {
      status: 'in_progress',
      attempt: 0,
    });
    const real = createTableHandler('data_transfer');
    const broken = {
      ...real,
      async resetStateOnFailure(...a: Parameters<typeof real.resetStateOnFailure>) {
        await real.resetStateOnFailure(...a);
        throw new Error('crash after the write, before commit');
      },
    };
    const before = await readOperation(db(), 'data_transfer', id);
    const side = await counts(db());
    await expect(
      applyFailure(
        { ...deps, registry: createHandlerRegistry([...builtinHandlers(), broken]) },
        { ref: { type: 'data_transfer', id, attempt: 0 }, error: new NetworkError('x') },
      ),
    ).rejects.toThrow(/crash after the write/);
    expect(await readOperation(db(), 'data_transfer', id)).toEqual(before);
    expect(await counts(db())).toEqual(side);
  });

  it('an unknown operation type is a typed error and writes nothing', async () => {
    const side = await counts(db());
    await expect(
      applyFailure(deps, { ref: { type: 'telescope_pointing', id: '1', attempt: 0 }, error: new Error('x') }),
    ).rejects.toBeInstanceOf(UnknownOperationTypeError);
    expect(await counts(db())).toEqual(side);
  });

  it('hostile error messages are stored cut and inert', async () => {
    const id = await seedOperation(db(), env.locations, 'data_transfer_package', { status: 'in_progress' });
    const hostile = `<!channel> boom\r\nBcc: evil@example.com ${'x'.repeat(2_000_000)}`;
    const out = await applyFailure(deps, {
      ref: { type: 'data_transfer_package', id, attempt: 0 },
      error: hostile,
    });
    expect(out.kind).toBe('retry_scheduled');
    const row = await readOperation(db(), 'data_transfer_package', id);
    expect(row!.lastErrorMessage!.length).toBeLessThan(5000);
    const [n] = await notes(id, 'data_transfer_package');
    expect(n!.body.length).toBeLessThan(70_000);
  });
});

describe('applyStallRecovery', () => {
  it('a process death while shared → pending(k+1), no retry counted, stall_count+1, WARNING notification', async () => {
    const id = await seedOperation(db(), env.locations, 'long_term_archive_transfer', {
      status: 'in_progress',
      attempt: 1,
      claimedBy: 'w-dead',
    });
    const out = await applyStallRecovery(deps, {
      ref: { type: 'long_term_archive_transfer', id, attempt: 1 },
      reason: 'heartbeat_expired',
      detectedBy: 'monitor-1',
    });
    expect(out).toMatchObject({
      kind: 'stall_recovered',
      operation: { status: 'pending', attempt: 2, retryCount: 0, stallCount: 1, runAlone: false },
    });
    expect(await events(id, 'long_term_archive_transfer')).toMatchObject([
      {
        event: 'stall_recovered',
        attempt: 1,
        worker_id: 'monitor-1',
        context: { reason: 'heartbeat_expired', claimedBy: 'w-dead', counted: 'shared', stallCount: 1 },
      },
    ]);
    const [n] = await notes(id, 'long_term_archive_transfer');
    expect(n).toMatchObject({ level: 'WARNING', event_kind: 'stall_recovered' });
    expect(n!.context).toMatchObject({ workerId: 'w-dead' });
    expect((n!.context as { action: string }).action).toMatch(/^Reset to PENDING as attempt 2/);
  });

  it('a progress stall → pending(k+1), retry counted (its own)', async () => {
    const id = await seedOperation(db(), env.locations, 'long_term_archive_transfer', {
      status: 'in_progress',
      attempt: 1,
    });
    const out = await applyStallRecovery(deps, {
      ref: { type: 'long_term_archive_transfer', id, attempt: 1 },
      reason: 'progress_stalled',
    });
    expect(out).toMatchObject({
      kind: 'stall_recovered',
      operation: { status: 'pending', attempt: 2, retryCount: 1, stallCount: 0, lastErrorCode: 'STALLED' },
    });
  });

  it('a custom handler without recoverSharedStall: a process death uses a retry (the rule before)', async () => {
    const custom = builtinHandlers().map(({ recoverSharedStall: _s, ...h }) => h);
    const d = { ...deps, registry: createHandlerRegistry(custom) };
    const id = await seedOperation(db(), env.locations, 'deletion', { status: 'in_progress', attempt: 1 });
    const out = await applyStallRecovery(d, {
      ref: { type: 'deletion', id, attempt: 1 },
      reason: 'heartbeat_expired',
    });
    expect(out).toMatchObject({ kind: 'stall_recovered', operation: { retryCount: 1, stallCount: 0 } });
  });

  it('stalls until exhausted → failed STALLED_TOO_OFTEN with one ERROR notification', async () => {
    const id = await seedOperation(db(), env.locations, 'data_transfer', {
      status: 'in_progress',
      attempt: 3,
      retryCount: 3,
    });
    const out = await applyStallRecovery(deps, {
      ref: { type: 'data_transfer', id, attempt: 3 },
      reason: 'progress_stalled',
    });
    expect(out).toMatchObject({
      kind: 'stall_exhausted',
      operation: { status: 'failed', lastErrorCode: 'STALLED_TOO_OFTEN' },
    });
    const ns = await notes(id, 'data_transfer');
    expect(ns).toHaveLength(1);
    expect(ns[0]).toMatchObject({
      level: 'ERROR',
      event_kind: 'stall_exhausted',
      dedup_key: 'stall_exhausted:data_transfer:STALLED_TOO_OFTEN',
    });
    expect(await events(id, 'data_transfer')).toMatchObject([
      { event: 'stall_exhausted', error_code: 'STALLED_TOO_OFTEN' },
    ]);
  });

  it('an attempt that already finished is left alone', async () => {
    const id = await seedOperation(db(), env.locations, 'data_transfer', { status: 'completed', attempt: 3 });
    const side = await counts(db());
    expect(
      await applyStallRecovery(deps, {
        ref: { type: 'data_transfer', id, attempt: 3 },
        reason: 'heartbeat_expired',
      }),
    ).toEqual({ kind: 'not_in_progress' });
    expect(await counts(db())).toEqual(side);
  });

  it('two monitors recovering the same stall: exactly one applies', async () => {
    const id = await seedOperation(db(), env.locations, 'unpack', { status: 'in_progress', attempt: 0 });
    const ref = { type: 'unpack', id, attempt: 0 };
    const outs = await Promise.all([
      applyStallRecovery(deps, { ref, reason: 'heartbeat_expired', detectedBy: 'm1' }),
      applyStallRecovery(deps, { ref, reason: 'heartbeat_expired', detectedBy: 'm2' }),
    ]);
    // The other finds the attempt moved on, or (when the two overlap) its row locked: skipped, not
    // waited for (`busy`, retried later, when it finds the attempt moved on).
    const kinds = outs.map((o) => o.kind).sort();
    expect(kinds[1]).toBe('stall_recovered');
    expect(['busy', 'not_in_progress']).toContain(kinds[0]);
    expect((await events(id, 'unpack')).filter((e) => e.event === 'stall_recovered')).toHaveLength(1);
  });
});
