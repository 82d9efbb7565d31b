// The rule that every channel timeout fits inside the outbox relay's lease, shared by the config
// schema (refused at parse) and createOutboxRelay (refused when its overrides change the lease).

/** The channel timeouts the rule looks at (the parsed email and Slack sections). */
export interface ChannelTimeouts {
  readonly email?:
    | {
        readonly connectionTimeoutMs: number;
        readonly greetingTimeoutMs: number;
        readonly socketTimeoutMs: number;
      }
    | undefined;
  readonly slack?: { readonly timeoutMs: number } | undefined;
}

/**
 * One problem per channel timeout longer than half of `leaseMs`: a hung step of a send must end by
 * the channel's own timeout, which says what hung, well before the relay has to cut the send at the
 * lease deadline (80 % of the lease after the last renewal); the other half leaves room to record
 * the result and renew. Each problem names both keys.
 */
export function timeoutsOverHalfLease(
  c: ChannelTimeouts,
  leaseMs: number,
): { readonly path: [string, string]; readonly message: string }[] {
  const half = leaseMs / 2;
  const timeouts: [string, string, number | undefined][] = [
    ['email', 'connectionTimeoutMs', c.email?.connectionTimeoutMs],
    ['email', 'greetingTimeoutMs', c.email?.greetingTimeoutMs],
    ['email', 'socketTimeoutMs', c.email?.socketTimeoutMs],
    ['slack', 'timeoutMs', c.slack?.timeoutMs],
  ];
  return timeouts
    .filter(([, , value]) => value !== undefined && value > half)
    .map(([channel, key, value]) => ({
      path: [channel, key],
      message: `${channel}.${key} (${value} ms) does not fit inside relay.leaseMs (${leaseMs} ms): expected at most half of relay.leaseMs (${half} ms); lower ${channel}.${key} or raise relay.leaseMs`,
    }));
}
