import {
  ChecksumVerificationError,
  NetworkError,
  PackageError,
  StorageError,
  UnknownError,
} from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import {
  backoffDelayMs,
  decideFailure,
  decideStall,
  effectiveMaxRetries,
  recoveryPolicySchema,
  type FailureDecision,
} from '../src/index.js';

const config = recoveryPolicySchema.parse({
  defaultMaxRetries: 3,
  backoff: { baseMs: 1000, maxMs: 60_000 },
  operationTypes: {
    data_transfer: { maxRetries: 5, backoffBaseMs: 2000, backoffMaxMs: 10_000 },
    unpack: { maxRetries: 0 },
  },
});
const row = (retryCount: number, maxRetries: number | null = null) => ({ retryCount, maxRetries });
const retryable = new NetworkError('reset');
const permanent = new PackageError('bad file', { retryable: false, code: 'BAD_INPUT' });

describe('effectiveMaxRetries: the error, else the row, else the type, else the default', () => {
  it.each([
    ['error wins over everything', 'data_transfer', row(0, 9), 2, 2],
    ['row wins over type', 'data_transfer', row(0, 9), undefined, 9],
    ['type wins over default', 'data_transfer', row(0), undefined, 5],
    ['type can forbid retries', 'unpack', row(0), undefined, 0],
    ['default', 'deletion', row(0), undefined, 3],
    ['row may say zero', 'deletion', row(0, 0), undefined, 0],
  ] as const)('%s', (_l, type, r, errMax, expected) => {
    expect(effectiveMaxRetries(config, type, r, errMax)).toBe(expected);
  });
});

describe('decideFailure', () => {
  const cases: [
    string,
    string,
    { retryCount: number; maxRetries: number | null },
    Parameters<typeof decideFailure>[0]['error'],
    Partial<FailureDecision>,
  ][] = [
    [
      'non-retryable fails at once',
      'deletion',
      row(0),
      permanent,
      { kind: 'fail', code: 'BAD_INPUT', reason: 'non_retryable' },
    ],
    [
      'non-retryable fails even with retries left',
      'data_transfer',
      row(0, 10),
      permanent,
      { kind: 'fail', reason: 'non_retryable' },
    ],
    [
      'retryable with retries left retries',
      'deletion',
      row(0),
      retryable,
      { kind: 'retry', retryNumber: 1, maxRetries: 3, reason: 'retryable' },
    ],
    ['last retry still retries', 'deletion', row(2), retryable, { kind: 'retry', retryNumber: 3 }],
    [
      'exhausted fails with the error code',
      'deletion',
      row(3),
      retryable,
      { kind: 'fail', code: 'NETWORK_ERROR', reason: 'retries_exhausted' },
    ],
    [
      'the type allows more',
      'data_transfer',
      row(4),
      retryable,
      { kind: 'retry', retryNumber: 5, maxRetries: 5 },
    ],
    [
      'the type allows none',
      'unpack',
      row(0),
      retryable,
      { kind: 'fail', reason: 'retries_exhausted', maxRetries: 0 },
    ],
    [
      'the error limits (checksum: 2)',
      'data_transfer',
      row(2),
      new ChecksumVerificationError('x'),
      { kind: 'fail', code: 'CHECKSUM_MISMATCH', maxRetries: 2 },
    ],
    [
      'unknown errors are retried once',
      'deletion',
      row(0),
      new UnknownError('odd'),
      { kind: 'retry', maxRetries: 1 },
    ],
    [
      'unknown errors then fail',
      'deletion',
      row(1),
      new UnknownError('odd'),
      { kind: 'fail', reason: 'retries_exhausted' },
    ],
    [
      'disk full retried up to 5',
      'raw_data_package',
      row(4),
      new StorageError('full', { code: 'STORAGE_FULL', maxRetries: 5 }),
      { kind: 'retry', retryNumber: 5 },
    ],
    [
      'retry counts beyond the limit (after an admin lowered it) fail',
      'deletion',
      row(7),
      retryable,
      { kind: 'fail', reason: 'retries_exhausted' },
    ],
  ];
  it.each(cases)('%s', (_l, type, r, error, expected) => {
    expect(decideFailure({ config, operationType: type, row: r, error, random: () => 0.5 })).toMatchObject(
      expected,
    );
  });
});

describe('decideStall: a stall that is its own uses a retry', () => {
  const own = (retryCount: number, maxRetries: number | null = null) => ({
    ...row(retryCount, maxRetries),
    stallCount: 0,
    runAlone: false,
  });
  it.each([
    ['first progress stall', 'deletion', own(0), { kind: 'retry', reason: 'stalled', retryNumber: 1 }],
    ['progress stall after retries', 'deletion', own(2), { kind: 'retry', retryNumber: 3 }],
    [
      'progress stalls exhausted',
      'deletion',
      own(3),
      { kind: 'fail', code: 'STALLED_TOO_OFTEN', reason: 'stalled_too_often' },
    ],
    ['row override', 'deletion', own(1, 1), { kind: 'fail', code: 'STALLED_TOO_OFTEN' }],
    ['type limit', 'data_transfer', own(4), { kind: 'retry', maxRetries: 5 }],
  ] as const)('%s', (_l, type, r, expected) => {
    expect(
      decideStall({ config, operationType: type, row: r, processLost: false, random: () => 0 }),
    ).toMatchObject(expected);
  });

  it('a progress stall uses a retry even while sharing its process (its own progress stopped)', () => {
    const r = { ...row(0), stallCount: 1, runAlone: false };
    expect(decideStall({ config, operationType: 'deletion', row: r, processLost: false })).toMatchObject({
      kind: 'retry',
      retryNumber: 1,
    });
  });
});

describe('decideStall: a process lost while shared is counted apart; alone, it is its own', () => {
  const at = (retryCount: number, stallCount: number, runAlone: boolean) => ({
    ...row(retryCount),
    stallCount,
    runAlone,
  });
  const lost = (r: ReturnType<typeof at>, type = 'deletion') =>
    decideStall({ config, operationType: type, row: r, processLost: true, random: () => 0 });

  it('a shared process death uses no retry, even with none left, and isolates from the second', () => {
    expect(lost(at(3, 0, false))).toMatchObject({ kind: 'shared', stallCount: 1, runAlone: false });
    expect(lost(at(3, 1, false))).toMatchObject({ kind: 'shared', stallCount: 2, runAlone: true });
  });

  it('isolateAfterStalls sets where isolation starts', () => {
    const c = recoveryPolicySchema.parse({ isolateAfterStalls: 1 });
    const d = decideStall({ config: c, operationType: 'deletion', row: at(0, 0, false), processLost: true });
    expect(d).toMatchObject({ kind: 'shared', stallCount: 1, runAlone: true });
    expect(recoveryPolicySchema.parse({}).isolateAfterStalls).toBe(2);
    expect(() => recoveryPolicySchema.parse({ isolateAfterStalls: 0 })).toThrow();
  });

  it('a death while running alone uses a retry, then fails POISON_OPERATION', () => {
    expect(lost(at(0, 2, true))).toMatchObject({ kind: 'retry', reason: 'stalled', retryNumber: 1 });
    expect(lost(at(3, 2, true))).toMatchObject({
      kind: 'fail',
      code: 'POISON_OPERATION',
      reason: 'crashed_alone',
      maxRetries: 3,
    });
  });

  it('an operation that crashes every process that runs it fails after isolateAfter + limit + 1 deaths', () => {
    let r = at(0, 0, false);
    let deaths = 0;
    for (;;) {
      deaths++;
      const d = lost(r);
      if (d.kind === 'fail') break;
      r =
        d.kind === 'shared'
          ? at(r.retryCount, d.stallCount, d.runAlone)
          : at(d.retryNumber, r.stallCount, r.runAlone);
      expect(deaths).toBeLessThan(100);
    }
    expect(deaths).toBe(2 + 3 + 1);
  });
});

describe('backoff: exponential with full jitter, capped', () => {
  it('stays within [0, min(cap, base·2^n)] for every retry count and draw', () => {
    for (let n = 0; n < 40; n++) {
      for (const r of [0, 0.001, 0.25, 0.5, 0.999, 1]) {
        const d = backoffDelayMs(config, 'deletion', n, () => r);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(Math.min(60_000, 1000 * 2 ** n));
        expect(Number.isInteger(d)).toBe(true);
      }
    }
  });

  it('doubles the ceiling each retry until the cap', () => {
    const top = (n: number, type = 'deletion') => backoffDelayMs(config, type, n, () => 1);
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => top(n))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
    expect([0, 1, 2, 3].map((n) => top(n, 'data_transfer'))).toEqual([2000, 4000, 8000, 10000]);
    expect(top(10_000)).toBe(60_000);
  });
});

describe('recoveryPolicySchema', () => {
  it('has the documented defaults', () => {
    expect(recoveryPolicySchema.parse({})).toEqual({
      defaultMaxRetries: 3,
      backoff: { baseMs: 30_000, maxMs: 3_600_000 },
      operationTypes: {},
      isolateAfterStalls: 2,
    });
  });
  it.each([
    [{ defaultMaxRetries: -1 }],
    [{ defaultMaxRetries: 1.5 }],
    [{ backoff: { baseMs: 10, maxMs: 5 } }],
    [{ backoff: { capMs: 5 } }],
    [{ operationTypes: { data_transfer: { backoffCapMs: 5 } } }],
    [{ operationTypes: { data_transfer: { maxRetries: 'x' } } }],
    [{ operationTypes: { data_transfer: { retries: 3 } } }],
    [{ unknownKey: 1 }],
  ])('rejects %j', (input) => {
    expect(recoveryPolicySchema.safeParse(input).success).toBe(false);
  });
  it('refuses a renamed key with its new name', () => {
    const r = recoveryPolicySchema.safeParse({ backoff: { capMs: 5 } });
    expect(r.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'backoff: capMs: renamed: use maxMs (same meaning)',
    ]);
  });
});
