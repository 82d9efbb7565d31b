// The initial schema. Forward-only: never edit a migration that has shipped; add the next one.
import { sql, type Kysely, type Migration } from 'kysely';

const STATUS_CHECK = `IN ('pending', 'scheduled', 'in_progress', 'completed', 'failed')`;

/** The state columns of one operation (DESIGN §3), optionally prefixed (unpack in data_transfers). */
function stateColumns(prefix: '' | 'unpack_', statusNullable: boolean): string {
  const p = prefix;
  return `
    ${p}status text ${statusNullable ? '' : "NOT NULL DEFAULT 'pending'"} CHECK (${p}status ${STATUS_CHECK}),
    ${p}attempt integer NOT NULL DEFAULT 0 CHECK (${p}attempt >= 0),
    ${p}retry_count integer NOT NULL DEFAULT 0 CHECK (${p}retry_count >= 0),
    ${p}max_retries integer CHECK (${p}max_retries >= 0),
    ${p}next_attempt_at timestamptz NOT NULL DEFAULT now(),
    ${p}scheduled_at timestamptz,
    ${p}claimed_by text,
    ${p}started_at timestamptz,
    ${p}finished_at timestamptz,
    ${p}last_seen_at timestamptz,
    ${p}progress_bytes bigint NOT NULL DEFAULT 0,
    ${p}last_error_code text,
    ${p}last_error_message text`;
}

/** Partial indexes that keep the dispatcher, the reconciler and the schedule check cheap at 1M rows. */
function stateIndexes(table: string, prefix: '' | 'unpack_'): string[] {
  const p = prefix;
  return [
    `CREATE INDEX ${table}_${p}due_idx ON ${table} (${p}next_attempt_at) WHERE ${p}status = 'pending'`,
    `CREATE INDEX ${table}_${p}in_progress_idx ON ${table} (${p}last_seen_at) WHERE ${p}status = 'in_progress'`,
    `CREATE INDEX ${table}_${p}scheduled_idx ON ${table} (${p}scheduled_at) WHERE ${p}status = 'scheduled'`,
  ];
}

const times = `created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now()`;

const statements = [
  `CREATE TABLE sites (
    id serial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    short_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE TABLE data_locations (
    id serial PRIMARY KEY,
    site_id integer NOT NULL REFERENCES sites (id),
    name text NOT NULL,
    location_type text NOT NULL CHECK (location_type IN ('source', 'buffer', 'long_term_archive', 'processing')),
    root_path text NOT NULL,
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (site_id, name)
  )`,
  `CREATE TABLE data_transfer_packages (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    buffer_location_id integer NOT NULL REFERENCES data_locations (id),
    relative_path text NOT NULL,
    size_bytes bigint,
    sha256 text,
    ${stateColumns('', false)},
    ${times}
  )`,
  `CREATE TABLE raw_data_packages (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    source_location_id integer NOT NULL REFERENCES data_locations (id),
    buffer_location_id integer NOT NULL REFERENCES data_locations (id),
    relative_path text NOT NULL,
    size_bytes bigint,
    sha256 text,
    data_transfer_package_id bigint REFERENCES data_transfer_packages (id),
    ${stateColumns('', false)},
    ${times}
  )`,
  `CREATE INDEX raw_data_packages_transfer_package_idx ON raw_data_packages (data_transfer_package_id)`,
  `CREATE TABLE raw_data_files (
    id bigserial PRIMARY KEY,
    source_location_id integer NOT NULL REFERENCES data_locations (id),
    raw_data_package_id bigint REFERENCES raw_data_packages (id),
    relative_path text NOT NULL,
    size_bytes bigint NOT NULL CHECK (size_bytes >= 0),
    sha256 text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (source_location_id, relative_path)
  )`,
  `CREATE INDEX raw_data_files_package_idx ON raw_data_files (raw_data_package_id)`,
  `CREATE TABLE data_transfers (
    id bigserial PRIMARY KEY,
    data_transfer_package_id bigint NOT NULL REFERENCES data_transfer_packages (id),
    origin_location_id integer NOT NULL REFERENCES data_locations (id),
    destination_location_id integer NOT NULL REFERENCES data_locations (id),
    ${stateColumns('', false)},
    ${stateColumns('unpack_', true)},
    ${times},
    UNIQUE (data_transfer_package_id, destination_location_id)
  )`,
  `CREATE TABLE long_term_archive_transfers (
    id bigserial PRIMARY KEY,
    raw_data_package_id bigint NOT NULL REFERENCES raw_data_packages (id),
    origin_location_id integer NOT NULL REFERENCES data_locations (id),
    destination_location_id integer NOT NULL REFERENCES data_locations (id),
    relative_path text NOT NULL,
    verified_at timestamptz,
    ${stateColumns('', false)},
    ${times},
    UNIQUE (raw_data_package_id, destination_location_id)
  )`,
  `CREATE TABLE physical_copies (
    id bigserial PRIMARY KEY,
    raw_data_package_id bigint REFERENCES raw_data_packages (id),
    data_transfer_package_id bigint REFERENCES data_transfer_packages (id),
    location_id integer NOT NULL REFERENCES data_locations (id),
    relative_path text NOT NULL,
    copy_kind text NOT NULL CHECK (copy_kind IN ('raw_files', 'raw_data_package', 'data_transfer_package')),
    deleted_at timestamptz,
    ${stateColumns('', false)},
    ${times},
    UNIQUE (location_id, relative_path)
  )`,
  ...stateIndexes('raw_data_packages', ''),
  ...stateIndexes('data_transfer_packages', ''),
  ...stateIndexes('data_transfers', ''),
  ...stateIndexes('data_transfers', 'unpack_'),
  ...stateIndexes('long_term_archive_transfers', ''),
  ...stateIndexes('physical_copies', ''),
  `CREATE TABLE operation_events (
    id bigserial PRIMARY KEY,
    operation_type text NOT NULL,
    operation_id bigint NOT NULL,
    attempt integer NOT NULL,
    event text NOT NULL,
    error_code text,
    error_class text,
    message text,
    retryable boolean,
    context jsonb NOT NULL DEFAULT '{}',
    worker_id text,
    created_at timestamptz NOT NULL DEFAULT now()
  )`,
  `CREATE INDEX operation_events_operation_idx ON operation_events (operation_type, operation_id)`,
  `CREATE INDEX operation_events_time_idx ON operation_events (created_at)`,
  `CREATE INDEX operation_events_code_idx ON operation_events (error_code, created_at) WHERE error_code IS NOT NULL`,
  `CREATE TABLE notifications (
    id bigserial PRIMARY KEY,
    level text NOT NULL CHECK (level IN ('ERROR', 'WARNING', 'INFO')),
    event_kind text NOT NULL,
    subject text NOT NULL,
    body text NOT NULL,
    context jsonb NOT NULL DEFAULT '{}',
    dedup_key text,
    operation_type text,
    operation_id bigint,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed', 'digested')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_by text,
    locked_until timestamptz,
    channel_results jsonb NOT NULL DEFAULT '{}',
    sent_at timestamptz,
    last_error text,
    digest_id bigint REFERENCES notifications (id),
    ${times}
  )`,
  `CREATE INDEX notifications_due_idx ON notifications (next_attempt_at) WHERE status = 'pending'`,
  `CREATE INDEX notifications_dedup_idx ON notifications (dedup_key, created_at) WHERE dedup_key IS NOT NULL`,
];

export const initial: Migration = {
  async up(db: Kysely<unknown>): Promise<void> {
    for (const statement of statements) await sql.raw(statement).execute(db);
  },
};
