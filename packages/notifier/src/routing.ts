import type { RouteConfig } from './config.js';
import type { ChannelKind } from './delivery-error.js';
import type { Notification } from './notification.js';

/** One place a notification goes. Its `key` names it in an outbox row's per-channel results. */
export interface DeliveryTarget {
  /** `log`, `email` (one mail to every routed address), or `slack:<channel>` (one message per channel). */
  readonly key: string;
  readonly channel: ChannelKind;
  readonly recipients: readonly string[];
}

export const LOG_TARGET: DeliveryTarget = Object.freeze({ key: 'log', channel: 'log', recipients: [] });

const matches = (route: RouteConfig, n: Pick<Notification, 'level' | 'eventKind'>): boolean =>
  (route.levels === undefined || route.levels.includes(n.level)) &&
  (route.eventKinds === undefined || route.eventKinds.includes(n.eventKind));

/**
 * Where a notification goes: always the log, then one mail to the union of the matching routes'
 * addresses, then each matching Slack channel once. A notification no route takes stays in the log.
 */
export function resolveTargets(
  routes: readonly RouteConfig[],
  notification: Pick<Notification, 'level' | 'eventKind'>,
): DeliveryTarget[] {
  const email = new Map<string, string>();
  const slack = new Set<string>();
  for (const route of routes) {
    if (!matches(route, notification)) continue;
    for (const address of route.email ?? [])
      if (!email.has(address.toLowerCase())) email.set(address.toLowerCase(), address);
    for (const channel of route.slack ?? []) slack.add(channel);
  }
  const targets: DeliveryTarget[] = [LOG_TARGET];
  if (email.size > 0)
    targets.push({ key: 'email', channel: 'email', recipients: [...email.values()].sort() });
  for (const channel of [...slack].sort())
    targets.push({ key: `slack:${channel}`, channel: 'slack', recipients: [channel] });
  return targets;
}
