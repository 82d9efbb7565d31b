// Stalls counted apart from an operation's own failures (issue 13.4). Forward-only.
//  - stall_count: how many times a worker process died or froze (a liveness stall) while this
//    operation shared it with other tasks. Such a stall says nothing about which task caused it, so
//    it does not use a retry (retry_count); it only decides isolation.
//  - run_alone: set once stall_count reaches the policy's `isolateAfterStalls`. The dispatcher then
//    sends the operation to its location's isolation queue, where a worker runs it with nothing
//    else in the process, so the next death is unambiguously its own (and counts as a retry).
// The unpack operation has its own pair in data_transfers, like its other state columns.
import { sql, type Kysely, type Migration } from 'kysely';

const TABLES: readonly (readonly [string, '' | 'unpack_'])[] = [
  ['raw_data_packages', ''],
  ['data_transfer_packages', ''],
  ['data_transfers', ''],
  ['data_transfers', 'unpack_'],
  ['long_term_archive_transfers', ''],
  ['physical_copies', ''],
];

const statements = TABLES.map(
  ([table, p]) => `ALTER TABLE ${table}
    ADD COLUMN ${p}stall_count integer NOT NULL DEFAULT 0 CHECK (${p}stall_count >= 0),
    ADD COLUMN ${p}run_alone boolean NOT NULL DEFAULT false`,
);

export const stallCount: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};
