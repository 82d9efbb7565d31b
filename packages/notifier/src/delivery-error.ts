import { CCATDataOperationError, type CcatErrorOptions } from '@ccat/errors';

export type ChannelKind = 'email' | 'slack' | 'log';

export interface DeliveryErrorOptions extends CcatErrorOptions {
  /** The channel that failed (also kept in `context.channel`, so it survives serialization). */
  readonly channel?: ChannelKind;
  /** The delivery target, e.g. `slack:#ccat-alerts` (also in `context.target`). */
  readonly target?: string;
  /** Do not try this channel again before this many ms (a rate limit's Retry-After). */
  readonly retryAfterMs?: number;
}

/**
 * A channel could not deliver a notification. `channel` says which, the message says why, and
 * `retryable` whether trying again may help: bad credentials (Slack `invalid_auth`, SMTP 535), a
 * rejected recipient or an unknown Slack channel are not; outages, timeouts and rate limits are.
 */
export class NotificationDeliveryError extends CCATDataOperationError {
  static override readonly defaultCode: string = 'NOTIFICATION_DELIVERY_FAILED';
  static override readonly defaultRetryable: boolean = true;

  readonly channel: ChannelKind | undefined;
  readonly target: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: DeliveryErrorOptions = {}) {
    const { channel, target, retryAfterMs, ...rest } = options;
    super(message, {
      ...rest,
      context: {
        ...rest.context,
        ...(channel !== undefined && { channel }),
        ...(target !== undefined && { target }),
        ...(retryAfterMs !== undefined && { retryAfterMs }),
      },
    });
    const ctx = this.context;
    this.channel = channel ?? (ctx['channel'] as ChannelKind | undefined);
    this.target = target ?? (typeof ctx['target'] === 'string' ? ctx['target'] : undefined);
    this.retryAfterMs =
      retryAfterMs ?? (typeof ctx['retryAfterMs'] === 'number' ? ctx['retryAfterMs'] : undefined);
  }
}
