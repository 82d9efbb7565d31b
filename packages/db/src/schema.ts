// kysely table types. Timestamps come back as Date; int8 ids and sizes as decimal strings.
import type { NotificationLevel } from '@ccat/errors';
import type { ColumnType, Generated, JSONColumnType } from 'kysely';
import type { OperationStatus } from './operation-types.js';

type NullableTimestamp = ColumnType<Date | null, Date | string | null | undefined, Date | string | null>;
type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
type Id = ColumnType<string, never, never>;
type Json = JSONColumnType<Record<string, unknown>, string | undefined, string>;

/** The kinds of data location (the CHECK of data_locations.location_type, migration 0001). */
export const LOCATION_TYPES = ['source', 'buffer', 'long_term_archive', 'processing'] as const;
export type LocationType = (typeof LOCATION_TYPES)[number];
export type NotificationStatus = 'pending' | 'sent' | 'failed' | 'digested';

/** The state columns every operation row carries (DESIGN §3). */
export interface OperationStateColumns {
  status: ColumnType<OperationStatus, OperationStatus | undefined, OperationStatus>;
  attempt: Generated<number>;
  retry_count: Generated<number>;
  /** Liveness stalls while sharing a worker process: counted apart from retries (migration 0003). */
  stall_count: Generated<number>;
  /** Runs alone in a worker process (isolation queue) from now on (migration 0003). */
  run_alone: Generated<boolean>;
  max_retries: number | null;
  next_attempt_at: Generated<Date>;
  scheduled_at: NullableTimestamp;
  claimed_by: string | null;
  started_at: NullableTimestamp;
  finished_at: NullableTimestamp;
  last_seen_at: NullableTimestamp;
  progress_bytes: Generated<string>;
  last_error_code: string | null;
  last_error_message: string | null;
}

interface RowTimes {
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface SitesTable {
  id: Generated<number>;
  name: string;
  short_name: string;
  created_at: Generated<Date>;
}

export interface DataLocationsTable {
  id: Generated<number>;
  site_id: number;
  name: string;
  location_type: LocationType;
  root_path: string;
  active: Generated<boolean>;
  created_at: Generated<Date>;
}

export interface RawDataFilesTable {
  id: Id;
  source_location_id: number;
  raw_data_package_id: Int8 | null;
  relative_path: string;
  size_bytes: Int8;
  sha256: string;
  created_at: Generated<Date>;
}

export interface RawDataPackagesTable extends OperationStateColumns, RowTimes {
  id: Id;
  name: string;
  source_location_id: number;
  buffer_location_id: number;
  relative_path: string;
  size_bytes: Int8 | null;
  sha256: string | null;
  data_transfer_package_id: Int8 | null;
}

export interface DataTransferPackagesTable extends OperationStateColumns, RowTimes {
  id: Id;
  name: string;
  buffer_location_id: number;
  relative_path: string;
  size_bytes: Int8 | null;
  sha256: string | null;
}

/** The unpack operation's own state columns in data_transfers; `unpack_status` is null until it exists. */
export interface UnpackStateColumns {
  unpack_status: OperationStatus | null;
  unpack_attempt: Generated<number>;
  unpack_retry_count: Generated<number>;
  unpack_stall_count: Generated<number>;
  unpack_run_alone: Generated<boolean>;
  unpack_max_retries: number | null;
  unpack_next_attempt_at: Generated<Date>;
  unpack_scheduled_at: NullableTimestamp;
  unpack_claimed_by: string | null;
  unpack_started_at: NullableTimestamp;
  unpack_finished_at: NullableTimestamp;
  unpack_last_seen_at: NullableTimestamp;
  unpack_progress_bytes: Generated<string>;
  unpack_last_error_code: string | null;
  unpack_last_error_message: string | null;
}

export interface DataTransfersTable extends OperationStateColumns, UnpackStateColumns, RowTimes {
  id: Id;
  data_transfer_package_id: Int8;
  origin_location_id: number;
  destination_location_id: number;
}

export interface LongTermArchiveTransfersTable extends OperationStateColumns, RowTimes {
  id: Id;
  raw_data_package_id: Int8;
  origin_location_id: number;
  destination_location_id: number;
  relative_path: string;
  verified_at: NullableTimestamp;
}

export type CopyKind = 'raw_files' | 'raw_data_package' | 'data_transfer_package';

/** A copy of data at a location; its state columns are the deletion operation's. */
export interface PhysicalCopiesTable extends OperationStateColumns, RowTimes {
  id: Id;
  raw_data_package_id: Int8 | null;
  data_transfer_package_id: Int8 | null;
  location_id: number;
  relative_path: string;
  copy_kind: CopyKind;
  deleted_at: NullableTimestamp;
}

export interface OperationEventsTable {
  id: Id;
  operation_type: string;
  operation_id: Int8;
  attempt: number;
  event: string;
  error_code: string | null;
  error_class: string | null;
  message: string | null;
  retryable: boolean | null;
  context: Json;
  worker_id: string | null;
  created_at: Generated<Date>;
}

export interface NotificationsTable {
  id: Id;
  level: NotificationLevel;
  event_kind: string;
  subject: string;
  body: string;
  context: Json;
  dedup_key: string | null;
  operation_type: string | null;
  operation_id: Int8 | null;
  status: ColumnType<NotificationStatus, NotificationStatus | undefined, NotificationStatus>;
  attempts: Generated<number>;
  next_attempt_at: Generated<Date>;
  locked_by: string | null;
  locked_until: NullableTimestamp;
  channel_results: Json;
  sent_at: NullableTimestamp;
  last_error: string | null;
  digest_id: Int8 | null;
  /** Set on the first row of a dedup key: alike rows until then are digested (migration 0002). */
  window_until: NullableTimestamp;
  /** Set on a digest row: the first row of the window it summarises (migration 0002). */
  digest_of: Int8 | null;
  created_at: Generated<Date>;
  updated_at: Generated<Date>;
}

export interface Database {
  sites: SitesTable;
  data_locations: DataLocationsTable;
  raw_data_files: RawDataFilesTable;
  raw_data_packages: RawDataPackagesTable;
  data_transfer_packages: DataTransferPackagesTable;
  data_transfers: DataTransfersTable;
  long_term_archive_transfers: LongTermArchiveTransfersTable;
  physical_copies: PhysicalCopiesTable;
  operation_events: OperationEventsTable;
  notifications: NotificationsTable;
}
