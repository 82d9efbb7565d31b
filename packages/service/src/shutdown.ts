// An ordered shutdown in which every step runs even when one fails.
import { classifyError } from '@ccat/errors';
import type { Logger } from 'pino';

/** Runs every step in order, even after one fails; logs each failure; throws them together at the end. */
export async function shutdownSteps(
  log: Logger,
  steps: readonly (readonly [string, () => Promise<unknown>])[],
): Promise<void> {
  const errors: unknown[] = [];
  for (const [what, step] of steps) {
    try {
      await step();
    } catch (e) {
      errors.push(e);
      log.warn({ step: what, err: classifyError(e).message }, 'shutdown step failed');
    }
  }
  if (errors.length > 0) throw new AggregateError(errors, 'shutdown had failures');
}
