import { describe, expect, it } from 'vitest';
import { buildNotification, type NotificationFacts } from '../src/index.js';

const facts = (delayMs: number | undefined): NotificationFacts => ({
  kind: 'retry_scheduled',
  ref: { type: 'transfer', id: '42', attempt: 1 },
  errorCode: 'REMOTE_UNAVAILABLE',
  errorMessage: 'connection refused',
  retryCount: 1,
  maxRetries: 5,
  ...(delayMs !== undefined && { delayMs }),
});

describe('buildNotification', () => {
  it('says when the retry runs in the one duration format (issue 14)', () => {
    expect(buildNotification(facts(7_200_000)).context?.['action']).toBe(
      'Reset to PENDING as attempt 2; it runs again in about 2h.',
    );
    expect(buildNotification({ ...facts(185_000), kind: 'stall_recovered' }).context?.['action']).toBe(
      'Reset to PENDING as attempt 2; it runs again in about 3m 5s.',
    );
    expect(buildNotification(facts(undefined)).context?.['action']).toBe(
      'Reset to PENDING as attempt 2; it runs again now.',
    );
  });
});
