import { InvalidOperationIdError, UnknownOperationTypeError, ValidationError } from '@ccat/errors';

/** The six pipeline operations, in pipeline order. */
export const OPERATION_TYPES = [
  'raw_data_package',
  'data_transfer_package',
  'data_transfer',
  'unpack',
  'long_term_archive_transfer',
  'deletion',
] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export const OPERATION_STATUSES = ['pending', 'scheduled', 'in_progress', 'completed', 'failed'] as const;
export type OperationStatus = (typeof OPERATION_STATUSES)[number];

/** Which table holds an operation type's state, and the prefix of its state columns there. */
export interface OperationTable {
  readonly table: string;
  /** `unpack` lives in data_transfers with its own `unpack_`-prefixed state columns. */
  readonly prefix: '' | 'unpack_';
}

export const OPERATION_TABLES: Readonly<Record<OperationType, OperationTable>> = {
  raw_data_package: { table: 'raw_data_packages', prefix: '' },
  data_transfer_package: { table: 'data_transfer_packages', prefix: '' },
  data_transfer: { table: 'data_transfers', prefix: '' },
  unpack: { table: 'data_transfers', prefix: 'unpack_' },
  long_term_archive_transfer: { table: 'long_term_archive_transfers', prefix: '' },
  deletion: { table: 'physical_copies', prefix: '' },
};

/** A fenced handle on one attempt of one operation. */
export interface OperationRef {
  readonly type: OperationType;
  /** int8 as a decimal string: ids outgrow JavaScript numbers before the telescope retires. */
  readonly id: string;
  /** The fencing token (DESIGN §4). */
  readonly attempt: number;
}

export function isOperationType(value: unknown): value is OperationType {
  return typeof value === 'string' && (OPERATION_TYPES as readonly string[]).includes(value);
}

/** Validates an operation type; throws UnknownOperationTypeError naming the known ones. */
export function parseOperationType(value: unknown): OperationType {
  if (isOperationType(value)) return value;
  const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 100)) : typeof value;
  throw new UnknownOperationTypeError(
    `unknown operation type ${shown}; expected one of ${OPERATION_TYPES.join(', ')}`,
    {
      context: { got: shown },
    },
  );
}

const INT8_MAX = 9223372036854775807n;

/** Validates an operation id (a positive int8, as number or decimal string); returns it as a string. */
export function parseOperationId(value: unknown): string {
  let text: string | undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) text = String(value);
  else if (typeof value === 'bigint' && value > 0n && value <= INT8_MAX) text = value.toString();
  else if (typeof value === 'string' && /^[1-9][0-9]{0,18}$/.test(value) && BigInt(value) <= INT8_MAX)
    text = value;
  if (text === undefined) {
    const shown =
      typeof value === 'string'
        ? JSON.stringify(value.slice(0, 100))
        : typeof value === 'number'
          ? String(value)
          : typeof value;
    throw new InvalidOperationIdError(`invalid operation id ${shown}: expected a positive 64-bit integer`, {
      context: { got: shown },
    });
  }
  return text;
}

/** Validates an attempt number (a non-negative integer). */
export function parseAttempt(value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= 2_147_483_647)
    return value;
  throw new ValidationError(
    `invalid attempt ${typeof value === 'number' ? value : typeof value}: expected a non-negative integer`,
  );
}

/** Validates all three parts of a reference. */
export function parseOperationRef(value: { type: unknown; id: unknown; attempt: unknown }): OperationRef {
  return {
    type: parseOperationType(value.type),
    id: parseOperationId(value.id),
    attempt: parseAttempt(value.attempt),
  };
}

/** `${type}:${id}:${attempt}`: the BullMQ job id and the heartbeat member of one attempt. */
export function operationKey(ref: OperationRef): string {
  return `${ref.type}:${ref.id}:${ref.attempt}`;
}

/** Parses an operation key; throws a ValidationError (or a more specific one) when malformed. */
export function parseOperationKey(key: string): OperationRef {
  const parts = key.split(':');
  if (parts.length !== 3)
    throw new ValidationError(
      `malformed operation key ${JSON.stringify(key.slice(0, 200))}: expected type:id:attempt`,
    );
  const [type, id, attempt] = parts as [string, string, string];
  return parseOperationRef({ type, id, attempt: /^\d{1,10}$/.test(attempt) ? Number(attempt) : attempt });
}
