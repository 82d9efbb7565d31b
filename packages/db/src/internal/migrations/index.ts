import type { Migration } from 'kysely';
import { initial } from './0001-initial.js';
import { outboxDigests } from './0002-outbox-digests.js';
import { stallCount } from './0003-stall-count.js';

/** Every migration, by name; names sort in the order they run. Append only. */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
  '0002-outbox-digests': outboxDigests,
  '0003-stall-count': stallCount,
};
