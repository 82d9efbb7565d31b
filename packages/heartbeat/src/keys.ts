import { keysFor } from './internal/keys-for.js';
import { parseOptions } from './internal/parse-options.js';
import { keyspaceOptionsSchema, type KeyspaceOptions } from './options.js';

/**
 * Every key of one deployment. All start with the namespace, which carries one Redis Cluster hash tag,
 * so every script (which touches several of these keys) runs on a cluster too:
 *
 * - namespace = `keyPrefix` itself when it already has a `{tag}`, else `${keyPrefix}{${hashTag}}:` with
 *   `hashTag` defaulting to the prefix without trailing colons: `ccat:` → `ccat:{ccat}:`.
 */
export interface HeartbeatKeys {
  readonly namespace: string;
  /** ZSET task id → deadline (ms, Redis time): last beat + that task's timeout. */
  readonly deadlines: string;
  /** ZSET task id → last progress change + that task's progress timeout (only tasks that set one). */
  readonly progressDeadlines: string;
  /** HASH task id → JSON details (registeredAt, emitterId, workerId, host, pid, queue, timeouts, attributes). */
  readonly details: string;
  /** HASH task id → `${changedAtMs}:${progressJson}`. */
  readonly progress: string;
  /** HASH member → JSON record of a corrupt entry moved out of the sets by the scanner. */
  readonly corrupt: string;
  /** HASH `${serviceType}:${serviceName}` → JSON last-seen record; outlives the health key. */
  readonly services: string;
  /** STRING with TTL: `${namespace}health:${serviceType}:${serviceName}`. */
  health(serviceType: string, serviceName: string): string;
}

/** Forms the keys for a prefix (default `ccat:`); throws ConfigurationError for a bad prefix or tag. */
export function heartbeatKeys(options: KeyspaceOptions = {}): HeartbeatKeys {
  const { keyPrefix, hashTag } = parseOptions(keyspaceOptionsSchema, options, 'keyspace');
  return keysFor(keyPrefix, hashTag);
}
