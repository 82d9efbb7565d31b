import type { OperationType } from '@ccat/db';
import { longTermArchiveTransfer } from './archive.js';
import { dataTransfer } from './data-transfer.js';
import { deletion } from './deletion.js';
import { rawDataPackage } from './raw-data-package.js';
import { dataTransferPackage } from './transfer-package.js';
import type { Operation } from './types.js';
import { unpack } from './unpack.js';

/** The six pipeline operations, by type. */
export const OPERATIONS: Readonly<Record<OperationType, Operation>> = {
  raw_data_package: rawDataPackage,
  data_transfer_package: dataTransferPackage,
  data_transfer: dataTransfer,
  unpack,
  long_term_archive_transfer: longTermArchiveTransfer,
  deletion,
};
