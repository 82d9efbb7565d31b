// Dedup windows and digests for the notification outbox (DESIGN §7). Forward-only.
//  - window_until: set on the first row of a dedup key when a relay claims it; alike rows claimed
//    before it passes are folded into that window's digest.
//  - digest_of: set on a digest row, pointing at the first row of the window it summarises (at
//    most one digest per window).
import { sql, type Kysely, type Migration } from 'kysely';

const statements = [
  `ALTER TABLE notifications
    ADD COLUMN window_until timestamptz,
    ADD COLUMN digest_of bigint REFERENCES notifications (id)`,
  `CREATE UNIQUE INDEX notifications_digest_of_idx ON notifications (digest_of) WHERE digest_of IS NOT NULL`,
  `CREATE INDEX notifications_window_idx ON notifications (dedup_key, window_until) WHERE window_until IS NOT NULL`,
  `CREATE INDEX notifications_digest_id_idx ON notifications (digest_id) WHERE digest_id IS NOT NULL`,
];

export const outboxDigests: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};
