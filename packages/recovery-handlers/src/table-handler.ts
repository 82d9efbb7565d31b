import {
  lockInProgress,
  markFailed,
  parseOperationType,
  recoverSharedStall,
  recoverStalled,
  resetForRetry,
  tryLockInProgress,
  type OperationType,
} from '@ccat/db';
import type { RecoveryHandler, TaskRef } from './handler.js';
import { resolveOperationOutputs } from './outputs.js';
import { removePartials } from './partial-files.js';

const asRef = (type: OperationType, ref: TaskRef) => ({ type, id: ref.id, attempt: ref.attempt });

/** The handler of one of the six built-in operation types: @ccat/db's fenced transitions on its table. */
export function createTableHandler(operationType: OperationType): RecoveryHandler {
  const type = parseOperationType(operationType);
  return {
    operationType: type,
    table: type,
    lockInProgress: (trx, ref) => lockInProgress(trx, asRef(type, ref)),
    tryLockInProgress: (trx, ref) => tryLockInProgress(trx, asRef(type, ref)),
    resetStateOnFailure: (trx, ref, args, options) => resetForRetry(trx, asRef(type, ref), args, options),
    markPermanentFailure: (trx, ref, args, options) => markFailed(trx, asRef(type, ref), args, options),
    recoverStalled: (trx, ref, args, options) => recoverStalled(trx, asRef(type, ref), args, options),
    recoverSharedStall: (trx, ref, args, options) => recoverSharedStall(trx, asRef(type, ref), args, options),
    async cleanup({ db, ref, logger }) {
      const outputs = await resolveOperationOutputs(db, type, ref.id);
      const removed: string[] = [];
      for (const o of outputs) removed.push(...(await removePartials(o.path, ref.attempt)));
      if (removed.length > 0) {
        // `attempt` is the caller's (its logger may bind the next attempt): these partials' own is partialOfAttempt.
        logger?.info(
          { operationType: type, operationId: ref.id, partialOfAttempt: ref.attempt, removed },
          'removed partial output',
        );
      }
      return { removed };
    },
  };
}
