import { describe, expect, it } from 'vitest';
import {
  BBCPError,
  CCATDataOperationError,
  ChecksumVerificationError,
  classifyError,
  deserializeError,
  NetworkError,
  PackageError,
  serializeError,
  UnknownError,
  ValidationError,
  type SerializedError,
} from '../src/index.js';

const roundTrip = (e: unknown): Error => deserializeError(JSON.parse(JSON.stringify(serializeError(e))));

describe('serializeError / deserializeError', () => {
  it('keeps class, code, retryability, retry limit and context', () => {
    const e = new ChecksumVerificationError('sha256 differs', {
      context: { file: 'a.fits', expected: 'ab', got: 'cd' },
    });
    const back = roundTrip(e);
    expect(back).toBeInstanceOf(ChecksumVerificationError);
    expect(back).toMatchObject({
      code: 'CHECKSUM_MISMATCH',
      retryable: true,
      maxRetries: 2,
      message: 'sha256 differs',
    });
    expect((back as CCATDataOperationError).context).toEqual({ file: 'a.fits', expected: 'ab', got: 'cd' });
    expect(back.stack).toBe(e.stack);
  });

  it('keeps overridden code and retryability', () => {
    const back = roundTrip(
      new PackageError('disk full', { code: 'STORAGE_FULL', retryable: false, maxRetries: 7 }),
    );
    expect(back).toMatchObject({
      name: 'PackageError',
      code: 'STORAGE_FULL',
      retryable: false,
      maxRetries: 7,
    });
  });

  it('keeps the cause chain, CCAT and foreign', () => {
    const sys = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
    const transfer = new BBCPError('bbcp exited 1', { context: { exitCode: 1 }, cause: classifyError(sys) });
    const back = roundTrip(transfer);
    expect(back).toBeInstanceOf(BBCPError);
    const c1 = back.cause as CCATDataOperationError;
    expect(c1).toBeInstanceOf(NetworkError);
    expect(c1.code).toBe('CONNECTION_RESET');
    const c2 = c1.cause as Error & { code?: string };
    expect(c2).toBeInstanceOf(Error);
    expect(c2.message).toBe('read ECONNRESET');
    expect(c2.code).toBe('ECONNRESET');
  });

  it('serializes through JSON.stringify via toJSON', () => {
    const json = JSON.parse(JSON.stringify(new ValidationError('bad'))) as SerializedError;
    expect(json).toMatchObject({ name: 'ValidationError', code: 'VALIDATION_FAILED', retryable: false });
  });

  it('survives circular contexts and circular causes', () => {
    const ctx: Record<string, unknown> = { a: 1 };
    ctx['self'] = ctx;
    const e = new PackageError('loop', { context: ctx });
    const json = serializeError(e);
    expect(() => JSON.stringify(json)).not.toThrow();
    // The constructor keeps a shallow copy, so the cycle closes one level down.
    expect(json.context).toEqual({ a: 1, self: { a: 1, self: '[Circular]' } });
    const x = new Error('x');
    const y = new Error('y', { cause: x });
    (x as { cause?: unknown }).cause = y;
    const sx = serializeError(x);
    expect(sx.cause?.cause).toEqual({ name: 'CircularCause', message: '[Circular]' });
  });

  it('cuts megabyte messages and contexts, with a marker', () => {
    const e = new PackageError('m'.repeat(3_000_000), {
      context: { blob: 'b'.repeat(1_000_000), list: Array.from({ length: 10_000 }, (_, i) => i) },
    });
    const json = serializeError(e);
    const text = JSON.stringify(json);
    expect(text.length).toBeLessThan(200_000);
    expect(json.message).toContain('…[truncated');
    expect(JSON.stringify(json.context)).toContain('truncated');
    expect(roundTrip(e)).toBeInstanceOf(PackageError);
  });

  it('handles bigint, dates, buffers, maps, functions, throwing getters in contexts', () => {
    const hostile = {
      get boom(): string {
        throw new Error('getter');
      },
    };
    const e = new PackageError('mixed', {
      context: {
        n: 10n,
        d: new Date(0),
        buf: Buffer.alloc(3),
        m: new Map([['k', 1]]),
        f: () => 1,
        hostile,
        inf: Infinity,
      },
    });
    const json = serializeError(e);
    expect(json.context).toEqual({
      n: '10',
      d: '1970-01-01T00:00:00.000Z',
      buf: '[Buffer 3 bytes]',
      m: { k: 1 },
      hostile: {},
      inf: 'Infinity',
    });
  });

  it('serializes non-errors as NonError with a safe description', () => {
    expect(serializeError('boom')).toEqual({ name: 'NonError', message: 'boom' });
    expect(serializeError(undefined)).toEqual({ name: 'NonError', message: 'undefined' });
    const hostile = {
      toString() {
        throw new Error('nope');
      },
    };
    expect(() => serializeError(hostile)).not.toThrow();
  });

  it('rebuilds classes it does not know as CCAT errors with their name', () => {
    const json: SerializedError = {
      name: 'TelescopeError',
      message: 'dome closed',
      code: 'DOME',
      retryable: true,
    };
    const back = deserializeError(json);
    expect(back).toBeInstanceOf(CCATDataOperationError);
    expect(back).toMatchObject({ name: 'TelescopeError', code: 'DOME', retryable: true });
  });

  it("rebuilds another service's own classes when given them", () => {
    class DomeError extends CCATDataOperationError {
      static override readonly defaultCode: string = 'DOME_CLOSED';
    }
    const back = deserializeError(serializeError(new DomeError('closed')), { classes: [DomeError] });
    expect(back).toBeInstanceOf(DomeError);
    expect((back as DomeError).code).toBe('DOME_CLOSED');
  });

  it('refuses input that is not a serialized error, with a typed error', () => {
    for (const bad of [
      null,
      'x',
      1,
      [],
      { name: 1, message: 'x' },
      { name: 'x' },
      { name: 'E', message: 'm', cause: 5 },
    ]) {
      expect(() => deserializeError(bad)).toThrow(ValidationError);
    }
  });

  it('gives unknown errors their defaults', () => {
    const back = roundTrip(classifyError(new Error('odd')));
    expect(back).toBeInstanceOf(UnknownError);
    expect(back).toMatchObject({ retryable: true, maxRetries: 1 });
  });
});
