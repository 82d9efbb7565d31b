import type { Database } from '@ccat/db';
import type { HeartbeatScanner } from '@ccat/heartbeat';
import type { RecoveryDeps } from '@ccat/recovery-handlers';
import type { RedisConnection } from '@ccat/service';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { MonitorConfig } from '../config.js';
import type { MonitorMetrics } from '../metrics.js';
import type { FailingMembers } from './failing-members.js';

/** What a Monitor works with; the caller owns (and closes) the connections. */
export interface MonitorDeps {
  readonly db: Kysely<Database>;
  readonly redis: RedisConnection;
  readonly logger: Logger;
  readonly config: MonitorConfig;
  readonly monitorId: string;
  readonly recovery: RecoveryDeps;
  readonly metrics: MonitorMetrics;
}

/** What one pass did, by outcome. */
export interface PassCounts {
  /** Stalled attempts reset to PENDING. */
  recovered: number;
  /** Stalled attempts marked FAILED (retries used up). */
  exhausted: number;
  /** In-progress rows without a heartbeat member, recovered by reconciliation. */
  reconciled: number;
  /** Scheduled rows nobody claimed within the schedule timeout (reported, not changed). */
  staleScheduled: number;
  /** Heartbeat entries quarantined or dropped as not ours. */
  corrupt: number;
}

/** What the steps of a pass share with the Monitor that runs them. */
export interface PassContext {
  readonly deps: MonitorDeps;
  readonly log: Logger;
  readonly scanner: HeartbeatScanner;
  readonly failing: FailingMembers;
  /** True once close() was called: a step stops at its next member, batch or type. */
  readonly closed: () => boolean;
  /**
   * Redis lost data or came back with older data (Reconciler.checkRedis): expired members wait
   * `graceMs`; `seenHere` false when another monitor saw it (not logged again).
   */
  readonly redisDataLost: (graceMs: number, seenHere: boolean) => void;
  /** Redis answered a check after failed ones: a loop sleeping after failed passes runs one now. */
  readonly redisAnswered: () => void;
}
