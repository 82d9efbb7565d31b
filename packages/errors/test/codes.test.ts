// The table of error codes agrees with the classes and the classifier that raise them. (That every
// code written elsewhere in src/ is in it is checked by tooling/repo-checks, which reads sources.)
import { describe, expect, it } from 'vitest';
import {
  builtinErrorClasses,
  CLASSIFIER_RULE_KEYS,
  classifyError,
  errorCodeEntry,
  ERROR_CODES,
} from '../src/index.js';

/** One probe per key of the classifier's rule tables, as the thrown values those rules match. */
function probes(): [string, Error][] {
  const { errno, sqlstate, sqlstateClass, redisReply } = CLASSIFIER_RULE_KEYS;
  const pg = (state: string) => Object.assign(new Error('probe'), { code: state, severity: 'ERROR' });
  return [
    ...errno.map((k): [string, Error] => [`errno ${k}`, Object.assign(new Error('probe'), { code: k })]),
    ...sqlstate.map((k): [string, Error] => [`SQLSTATE ${k}`, pg(k)]),
    ...sqlstateClass.map((k): [string, Error] => [`SQLSTATE class ${k}`, pg(`${k}ZZZ`)]),
    ['any other SQLSTATE', pg('ZZ999')],
    ...redisReply.map((w): [string, Error] => [
      `Redis reply ${w}`,
      Object.assign(new Error(`${w} probe`), { name: 'ReplyError' }),
    ]),
    ['Redis command timeout', new Error('Command timed out')],
  ];
}

describe('ERROR_CODES', () => {
  it('has a row for each class default code that matches the class', () => {
    for (const Cls of builtinErrorClasses) {
      const row = errorCodeEntry(Cls.defaultCode);
      expect(row, Cls.defaultCode).toBeDefined();
      expect(row?.class, Cls.defaultCode).toBe(Cls.name);
      if (row?.retryable !== 'varies') expect(row?.retryable, Cls.defaultCode).toBe(Cls.defaultRetryable);
      expect(row?.maxRetries, Cls.defaultCode).toBe(Cls.defaultMaxRetries);
    }
  });

  it.each(probes())(
    'gives what the classifier makes of %s: its class, retryability and limit',
    (_, probe) => {
      const e = classifyError(probe);
      const row = errorCodeEntry(e.code);
      expect(row, e.code).toBeDefined();
      expect(row?.class).toBe(e.name);
      expect(row?.retryable).toBe(e.retryable);
      expect(row?.maxRetries).toBe(e.maxRetries);
    },
  );

  it('writes each code in upper snake case, with a one-sentence meaning and advice that ends a sentence', () => {
    for (const [code, row] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
      expect(row.meaning, code).toMatch(/^[A-Z].*[^.\s]$/);
      if ('advice' in row) expect(row.advice, code).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('finds no row for a code it does not have, nor for an inherited property', () => {
    expect(errorCodeEntry('NO_SUCH_CODE')).toBeUndefined();
    expect(errorCodeEntry('constructor')).toBeUndefined();
  });
});
