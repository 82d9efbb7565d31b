// Fault injection, off by default: make chosen operations throw, crash the process, freeze the event
// loop, or hang without progress. The demo and the tests use it to show every recovery path.
import { createHash } from 'node:crypto';
import { NonRetryableError, OperationAbortedError, RetryableError, sleep } from '@ccat/errors';
import type { OperationRef } from '@ccat/db';
import { OPERATION_TYPES } from '@ccat/db';
import type { Logger } from 'pino';
import { z } from 'zod';

const FAULT_KINDS = ['retryable', 'non_retryable', 'crash', 'freeze', 'hang'] as const;

const ruleSchema = z.strictObject({
  kind: z
    .enum(FAULT_KINDS)
    .describe(
      '`retryable` / `non_retryable`: throw (INJECTED_FAULT / INJECTED_PERMANENT_FAULT); `crash`: SIGKILL the worker process; `freeze`: block its event loop; `hang`: stop progress while heartbeats go on.',
    ),
  fraction: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe('Share of matching attempts hit, chosen deterministically from the seed and the attempt.'),
  operationTypes: z
    .array(z.enum(OPERATION_TYPES))
    .optional()
    .describe('Only these operation types (default: all).'),
  operationIds: z.array(z.string()).optional().describe('Only these operation ids ("one named operation").'),
  attempts: z
    .union([z.array(z.number().int().min(0)), z.literal('all')])
    .default([0])
    .describe(
      'Only these attempts (default: the first, so a retry gets through), or `all` (a poison operation: every attempt).',
    ),
  stage: z
    .enum(['start', 'middle'])
    .default('middle')
    .describe('Where in the operation: before any work, or after writing partial output.'),
  durationMs: z
    .number()
    .int()
    .min(0)
    .default(60_000)
    .describe(
      'freeze: how long the event loop stops; hang: how long progress stops (aborting ends it early).',
    ),
  message: z
    .string()
    .max(10_000_000)
    .optional()
    .describe(
      "`retryable` / `non_retryable`: the thrown error's message (default: says the fault was injected). Tests push hostile text (secrets, NUL, megabytes) through a real task with it.",
    ),
});

export const faultsSchema = z.strictObject({
  enabled: z.boolean().default(false).describe('Inject the faults of `rules`; off by default.'),
  seed: z
    .string()
    .default('ccat')
    .describe('Seed of the deterministic draw behind `fraction`, so every process picks the same attempts.'),
  rules: z
    .array(ruleSchema)
    .default([])
    .describe('Faults to inject, each matching operations by type, id, attempt and stage.'),
});
export type FaultsConfig = z.output<typeof faultsSchema>;
export type FaultRule = z.output<typeof ruleSchema>;

/** Whether `rule` (number `index`) hits this attempt: a stable draw, the same in every process. */
function faultHits(
  config: FaultsConfig,
  index: number,
  rule: FaultRule,
  ref: OperationRef,
  stage: 'start' | 'middle',
): boolean {
  if (!config.enabled || rule.stage !== stage) return false;
  if (rule.operationTypes && !rule.operationTypes.includes(ref.type)) return false;
  if (rule.operationIds && !rule.operationIds.includes(ref.id)) return false;
  if (rule.attempts !== 'all' && !rule.attempts.includes(ref.attempt)) return false;
  if (rule.fraction >= 1) return true;
  const digest = createHash('sha256')
    .update(`${config.seed}|${index}|${ref.type}|${ref.id}|${ref.attempt}`)
    .digest();
  return digest.readUInt32BE(0) / 0x1_0000_0000 < rule.fraction;
}

/** Stops this thread (and so the event loop, timers and heartbeats) for `ms`. */
function freezeEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

export interface FaultInjector {
  checkpoint(ref: OperationRef, stage: 'start' | 'middle', signal: AbortSignal): Promise<void>;
}

export function createFaultInjector(
  config: FaultsConfig,
  logger: Logger,
  exit: (signal: 'SIGKILL') => void,
): FaultInjector {
  return {
    async checkpoint(ref, stage, signal) {
      if (!config.enabled) return;
      for (const [i, rule] of config.rules.entries()) {
        if (!faultHits(config, i, rule, ref, stage)) continue;
        const log = logger.child({
          operationType: ref.type,
          operationId: ref.id,
          attempt: ref.attempt,
          fault: rule.kind,
          stage,
        });
        log.warn('injecting fault');
        switch (rule.kind) {
          case 'retryable':
            throw new RetryableError(rule.message ?? 'injected retryable fault', { code: 'INJECTED_FAULT' });
          case 'non_retryable':
            throw new NonRetryableError(rule.message ?? 'injected permanent fault', {
              code: 'INJECTED_PERMANENT_FAULT',
            });
          case 'crash':
            log.flush?.();
            exit('SIGKILL');
            return;
          case 'freeze':
            freezeEventLoop(rule.durationMs);
            break;
          case 'hang':
            if (await sleep(rule.durationMs, signal))
              throw new OperationAbortedError('hang interrupted', { cause: signal.reason });
            break;
        }
      }
    },
  };
}
