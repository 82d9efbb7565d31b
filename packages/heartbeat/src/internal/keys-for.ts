import type { HeartbeatKeys } from '../keys.js';

/** Forms the keys for options already validated (see `HeartbeatKeys` for the rule). */
export function keysFor(keyPrefix: string, hashTag: string | undefined): HeartbeatKeys {
  const namespace = keyPrefix.includes('{')
    ? keyPrefix
    : `${keyPrefix}{${hashTag ?? (keyPrefix.replace(/:+$/, '') || 'ccat')}}:`;
  return {
    namespace,
    deadlines: `${namespace}hb:deadlines`,
    progressDeadlines: `${namespace}hb:progress-deadlines`,
    details: `${namespace}hb:details`,
    progress: `${namespace}hb:progress`,
    corrupt: `${namespace}hb:corrupt`,
    services: `${namespace}services`,
    health: (serviceType, serviceName) => `${namespace}health:${serviceType}:${serviceName}`,
  };
}
