import { captureLogs } from '@ccat/test-support';
import type { OperationSnapshot } from '@ccat/db';
import { UnknownOperationTypeError } from '@ccat/errors';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyFailure,
  applyStallRecovery,
  builtinHandlers,
  createHandlerRegistry,
  recoveryPolicySchema,
  type RecoveryHandler,
} from '../src/index.js';
import { createTestDatabase, type SeededTestDatabase } from '@ccat/db/testing';

let env: SeededTestDatabase;
beforeAll(async () => {
  env = await createTestDatabase('rh_registry', { locations: true });
  await sql`CREATE TABLE calibration_uploads (
    id bigserial PRIMARY KEY, status text NOT NULL, attempt int NOT NULL DEFAULT 0, retry_count int NOT NULL DEFAULT 0,
    max_retries int, last_error_code text, next_attempt_at timestamptz NOT NULL DEFAULT now())`.execute(
    env.database.db,
  );
});
afterAll(async () => {
  await env?.close();
});

describe('the registry', () => {
  it('has the six built-ins and names them when asked for an unknown type', () => {
    const r = createHandlerRegistry();
    expect(r.types).toEqual([
      'raw_data_package',
      'data_transfer_package',
      'data_transfer',
      'unpack',
      'long_term_archive_transfer',
      'deletion',
    ]);
    expect(() => r.get('nope')).toThrow(UnknownOperationTypeError);
    expect(() => r.get('nope')).toThrow(/registered: raw_data_package, /);
  });

  it("takes another service's operation type in a few lines", async () => {
    // Another CCAT service's operation, on its own table: the whole handler.
    const snapshot = sql`id::text, status, attempt, retry_count AS "retryCount", max_retries AS "maxRetries", last_error_code AS "lastErrorCode"`;
    const move =
      (status: string, bump: boolean) =>
      async (
        trx: Parameters<RecoveryHandler['cleanup']>[0]['db'],
        ref: { id: string; attempt: number },
        args: { error: { code: string } },
      ) => {
        const { rows } =
          await sql<OperationSnapshot>`UPDATE calibration_uploads SET status = ${status}, last_error_code = ${args.error.code},
        attempt = attempt + ${bump ? 1 : 0}, retry_count = retry_count + ${bump ? 1 : 0}
        WHERE id = ${ref.id} AND attempt = ${ref.attempt} AND status = 'in_progress' RETURNING ${snapshot}`.execute(
            trx,
          );
        return rows[0] === undefined ? { applied: false } : { applied: true, operation: rows[0] };
      };
    const calibration: RecoveryHandler = {
      operationType: 'calibration_upload',
      lockInProgress: async (trx, ref) =>
        (
          await sql<OperationSnapshot>`SELECT ${snapshot} FROM calibration_uploads WHERE id = ${ref.id} AND attempt = ${ref.attempt} AND status = 'in_progress' FOR UPDATE`.execute(
            trx,
          )
        ).rows[0],
      resetStateOnFailure: move('pending', true),
      recoverStalled: move('pending', true),
      markPermanentFailure: move('failed', false),
      cleanup: () => Promise.resolve({ removed: [] }),
    };
    const registry = createHandlerRegistry([...builtinHandlers(), calibration]);
    const deps = {
      db: env.database.db,
      registry,
      policy: recoveryPolicySchema.parse({ defaultMaxRetries: 1 }),
      logger: captureLogs().logger,
    };

    const { rows } = await sql<{
      id: string;
    }>`INSERT INTO calibration_uploads (status) VALUES ('in_progress') RETURNING id::text`.execute(
      env.database.db,
    );
    const id = rows[0]!.id;
    expect(
      await applyFailure(deps, {
        ref: { type: 'calibration_upload', id, attempt: 0 },
        error: Object.assign(new Error('x'), { code: 'ETIMEDOUT' }),
      }),
    ).toMatchObject({
      kind: 'retry_scheduled',
      operation: { status: 'pending', attempt: 1 },
    });
    await sql`UPDATE calibration_uploads SET status = 'in_progress' WHERE id = ${id}`.execute(
      env.database.db,
    );
    expect(
      await applyStallRecovery(deps, {
        ref: { type: 'calibration_upload', id, attempt: 1 },
        reason: 'heartbeat_expired',
      }),
    ).toMatchObject({
      kind: 'stall_exhausted',
      operation: { status: 'failed', lastErrorCode: 'STALLED_TOO_OFTEN' },
    });
    const events = await env.database.db
      .selectFrom('operation_events')
      .select(['event', 'operation_type'])
      .where('operation_id', '=', id)
      .orderBy('id')
      .execute();
    expect(events).toEqual([
      { event: 'retry_scheduled', operation_type: 'calibration_upload' },
      { event: 'stall_exhausted', operation_type: 'calibration_upload' },
    ]);
  });
});
