import { describe, expect, it } from 'vitest';
import {
  adviceFor,
  ERROR_CODES,
  EVENT_CATALOGUE,
  EVENT_KINDS,
  eventLevel,
  GENERIC_ADVICE,
  type EventKindText,
} from '../src/index.js';

describe('the operator text catalogue', () => {
  it('gives DESIGN §7 levels, INFO for kinds it does not know', () => {
    expect(eventLevel('permanent_failure')).toBe('ERROR');
    expect(eventLevel('stall_exhausted')).toBe('ERROR');
    expect(eventLevel('recovery_failing')).toBe('ERROR');
    expect(eventLevel('stall_recovered')).toBe('WARNING');
    expect(eventLevel('retry_scheduled')).toBe('INFO');
    expect(eventLevel('another_service_kind')).toBe('INFO');
    expect(eventLevel('toString')).toBe('INFO');
  });

  it('declares every kind once, and every notified kind with a digest phrase has its advice', () => {
    expect(new Set(EVENT_KINDS).size).toBe(EVENT_KINDS.length);
    for (const k of EVENT_KINDS) {
      const t: EventKindText = EVENT_CATALOGUE[k];
      if (t.phrase !== undefined) expect(t.advice).toBeDefined();
    }
  });

  it('advises per error code, generically for the rest', () => {
    expect(adviceFor('STORAGE_FULL')).toBe(ERROR_CODES.STORAGE_FULL.advice);
    expect(adviceFor('DB_DEADLOCK')).toBe(GENERIC_ADVICE);
    expect(adviceFor('NO_SUCH_CODE')).toBe(GENERIC_ADVICE);
    expect(adviceFor('constructor')).toBe(GENERIC_ADVICE);
  });
});
