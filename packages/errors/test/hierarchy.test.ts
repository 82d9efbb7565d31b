import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { builtinErrorClasses, CCATDataOperationError, isCcatError } from '../src/index.js';

describe('the hierarchy', () => {
  it.each(builtinErrorClasses.map((c) => [c.name, c] as const))(
    '%s: name, defaults, native cause',
    (name, Cls) => {
      const cause = new Error('root');
      const e = new Cls('msg', { cause });
      expect(e).toBeInstanceOf(Error);
      expect(e).toBeInstanceOf(CCATDataOperationError);
      expect(e.name).toBe(name);
      expect(e.code).toBe(Cls.defaultCode);
      expect(e.retryable).toBe(Cls.defaultRetryable);
      expect(e.maxRetries).toBe(Cls.defaultMaxRetries);
      expect(e.cause).toBe(cause);
      expect(Object.isFrozen(e.context)).toBe(true);
      expect(isCcatError(e)).toBe(true);
    },
  );

  it('every class has its own stable code', () => {
    const codes = builtinErrorClasses.map((c) => c.defaultCode);
    expect(new Set(codes).size).toBe(codes.length);
    for (const c of codes) expect(c).toMatch(/^[A-Z][A-Z0-9_]+$/);
  });

  it('names every CCAT class the original names', () => {
    for (const n of [
      'PackageError',
      'DataTransferError',
      'BBCPError',
      'NetworkError',
      'StorageError',
      'ServiceUnavailableError',
      'DataCorruptionError',
      'ChecksumVerificationError',
      'ArchiveCorruptionError',
      'UnpackError',
      'DestinationFileExistsError',
      'ArchiveError',
      'DeletionError',
      'DatabaseError',
      'DatabaseOperationError',
      'ConfigurationError',
      'PermanentError',
      'RetryableError',
      'NonRetryableError',
    ]) {
      expect(api).toHaveProperty(n);
    }
  });

  it('isCcatError is false for ordinary errors and non-errors', () => {
    expect(isCcatError(new Error('x'))).toBe(false);
    expect(isCcatError({ code: 'X', retryable: true, context: {} })).toBe(false);
    expect(isCcatError(undefined)).toBe(false);
  });
});
