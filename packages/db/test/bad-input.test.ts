import { InvalidOperationIdError, UnknownOperationTypeError, ValidationError } from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claim,
  complete,
  dispatch,
  manualRetry,
  parseOperationId,
  parseOperationKey,
  parseOperationType,
  readOperation,
  resetForRetry,
  type OperationRef,
  type OperationType,
} from '../src/index.js';
import { createTestDatabase, seedOperation, sideCounts, type SeededTestDatabase } from '../src/testing.js';

let t: SeededTestDatabase;
beforeAll(async () => {
  t = await createTestDatabase('db_bad_input', { locations: true });
});
afterAll(async () => {
  await t?.close();
});

describe('bad input gets a typed error and writes nothing', () => {
  it('unknown operation types', async () => {
    const id = await seedOperation(t.db, t.locations, 'raw_data_package', { status: 'scheduled' });
    const before = await readOperation(t.db, 'raw_data_package', id);
    const side = await sideCounts(t.db);
    for (const bad of [
      'telescope',
      '',
      'RAW_DATA_PACKAGE',
      'raw_data_package; DROP TABLE sites',
      undefined,
      42,
    ]) {
      const ref = { type: bad as OperationType, id, attempt: 0 };
      await expect(claim(t.db, ref, { workerId: 'w' })).rejects.toBeInstanceOf(UnknownOperationTypeError);
      await expect(dispatch(t.db, bad as OperationType, id)).rejects.toBeInstanceOf(
        UnknownOperationTypeError,
      );
      await expect(readOperation(t.db, bad as OperationType, id)).rejects.toBeInstanceOf(
        UnknownOperationTypeError,
      );
    }
    expect(await readOperation(t.db, 'raw_data_package', id)).toEqual(before);
    expect(await sideCounts(t.db)).toEqual(side);
  });

  it('non-numeric, negative, fractional and oversized ids', async () => {
    const side = await sideCounts(t.db);
    for (const bad of [
      'abc',
      '12a',
      '-1',
      '0',
      '1.5',
      '',
      ' 1',
      '99999999999999999999',
      '9223372036854775808',
      -3,
      0,
      1.5,
      NaN,
      null,
      {},
    ]) {
      const ref = { type: 'raw_data_package', id: bad, attempt: 0 } as unknown as OperationRef;
      await expect(complete(t.db, ref, { event: {} })).rejects.toBeInstanceOf(InvalidOperationIdError);
      await expect(manualRetry(t.db, 'raw_data_package', bad as string)).rejects.toBeInstanceOf(
        InvalidOperationIdError,
      );
    }
    expect(await sideCounts(t.db)).toEqual(side);
    expect(parseOperationId('9223372036854775807')).toBe('9223372036854775807');
    expect(parseOperationId(17)).toBe('17');
    expect(parseOperationId(17n)).toBe('17');
  });

  it('bad attempts and delays', async () => {
    const id = await seedOperation(t.db, t.locations, 'unpack', { status: 'in_progress' });
    const before = await readOperation(t.db, 'unpack', id);
    for (const attempt of [-1, 1.5, '0', NaN]) {
      await expect(complete(t.db, { type: 'unpack', id, attempt: attempt as number })).rejects.toBeInstanceOf(
        ValidationError,
      );
    }
    for (const delayMs of [-1, NaN, Infinity]) {
      await expect(
        resetForRetry(
          t.db,
          { type: 'unpack', id, attempt: 0 },
          { delayMs, error: { code: 'X', message: 'x' } },
        ),
      ).rejects.toMatchObject({ retryable: false });
    }
    expect(await readOperation(t.db, 'unpack', id)).toEqual(before);
  });

  it('parses operation keys strictly', () => {
    expect(parseOperationKey('data_transfer:42:3')).toEqual({ type: 'data_transfer', id: '42', attempt: 3 });
    for (const bad of [
      '',
      'data_transfer:42',
      'data_transfer:42:3:4',
      'nope:1:1',
      'data_transfer:x:1',
      'data_transfer:1:-1',
      'data_transfer:1:1e3',
    ]) {
      expect(() => parseOperationKey(bad)).toThrow(ValidationError);
    }
    expect(() => parseOperationType('x')).toThrow(/expected one of raw_data_package/);
  });

  it('a real PostgreSQL constraint violation is classified', async () => {
    const err = await t.db
      .insertInto('sites')
      .values({ name: 'Chajnantor', short_name: 'dup' })
      .execute()
      .catch((e: unknown) => e);
    const { classifyError } = await import('@ccat/errors');
    expect(classifyError(err)).toMatchObject({ code: 'DB_UNIQUE_VIOLATION', retryable: false });
  });
});
