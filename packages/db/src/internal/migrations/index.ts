import type { Migration } from 'kysely';
import { initial } from './0001-initial.js';

/** Every migration, by name; names sort in the order they run. Append only. */
export const migrations: Readonly<Record<string, Migration>> = {
  '0001-initial': initial,
};
