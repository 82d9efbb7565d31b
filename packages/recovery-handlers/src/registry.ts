import { OPERATION_TYPES } from '@ccat/db';
import { UnknownOperationTypeError } from '@ccat/errors';
import type { RecoveryHandler } from './handler.js';
import { createTableHandler } from './table-handler.js';

/** Handlers by operation type. */
export interface HandlerRegistry {
  /** The handler of `type`; throws UnknownOperationTypeError naming the registered ones. */
  get(type: string): RecoveryHandler;
  has(type: string): boolean;
  readonly types: readonly string[];
}

/** The six built-in handlers (DESIGN §3). */
export function builtinHandlers(): RecoveryHandler[] {
  return OPERATION_TYPES.map((t) => createTableHandler(t));
}

/**
 * A registry over `handlers` (default: the six built-ins). Another service adds its own type with
 * `createHandlerRegistry([...builtinHandlers(), myHandler])`; a later handler for the same type wins.
 */
export function createHandlerRegistry(
  handlers: readonly RecoveryHandler[] = builtinHandlers(),
): HandlerRegistry {
  const byType = new Map<string, RecoveryHandler>();
  for (const h of handlers) byType.set(h.operationType, h);
  const types = Object.freeze([...byType.keys()]);
  return {
    types,
    has: (type) => byType.has(type),
    get(type) {
      const h = byType.get(type);
      if (h === undefined) {
        throw new UnknownOperationTypeError(
          `no recovery handler for operation type ${JSON.stringify(String(type).slice(0, 100))}; registered: ${types.join(', ')}`,
        );
      }
      return h;
    },
  };
}
