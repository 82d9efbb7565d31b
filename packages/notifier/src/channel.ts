import { NotificationDeliveryError, type ChannelKind } from './delivery-error.js';
import type { Notification } from './notification.js';
import type { DigestSummary } from './outbox-store.js';
import type { Redactor } from './redact.js';

/** What a channel delivers: one notification, or the digest of a window of alike ones. */
export interface OutboundMessage {
  readonly notification: Notification;
  readonly digest?: DigestSummary;
}

/** How untrusted text is made safe and short before a channel shows it. */
export interface ContentOptions {
  /** Default: the built-in secret patterns only. */
  readonly redact?: Redactor;
  /** Longest title/subject (default 200). */
  readonly maxSubjectLength?: number;
  /** Longest body (default 10 000; Slack cuts further to its block limits). */
  readonly maxBodyLength?: number;
}

/** What a channel reports for a delivered message (an SMTP message id, a Slack `ts`). */
export interface DeliveryReceipt {
  readonly id?: string;
}

/** Per-send options of `Channel.deliver`. */
export interface DeliverySendOptions {
  /**
   * Ends the send: the channel stops its work, closes the connection it used for this send, and
   * throws a retryable NotificationDeliveryError with code `NOTIFY_ABORTED`. The outbox relay aborts
   * a send when its lease on the row is lost or about to lapse. An aborted send may still have been
   * delivered (the server may have accepted the message before the abort): the relay retries it only
   * under a lease it holds, so two relays never send the same row at the same time.
   */
  readonly signal?: AbortSignal;
}

/** A place notifications go. */
export interface Channel {
  readonly kind: ChannelKind;
  /**
   * Delivers one message to `recipients` (mail addresses, Slack channels; the log takes none).
   * Throws a NotificationDeliveryError that says whether trying again may help. With
   * `options.signal`, an abort ends the send at once (see DeliverySendOptions).
   */
  deliver(
    message: OutboundMessage,
    recipients: readonly string[],
    options?: DeliverySendOptions,
  ): Promise<DeliveryReceipt>;
  /** Releases what the channel created (never a transport or client the caller passed in). */
  close(): Promise<void>;
}

/**
 * The error a channel throws when its send was aborted through `DeliverySendOptions.signal`:
 * retryable, code `NOTIFY_ABORTED`, the signal's reason as cause.
 */
export function abortedDelivery(
  channel: ChannelKind,
  target: string,
  signal: AbortSignal,
): NotificationDeliveryError {
  const reason: unknown = signal.reason;
  const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
  return new NotificationDeliveryError(`${channel}: send aborted (${why}); will retry`, {
    channel,
    target,
    code: 'NOTIFY_ABORTED',
    retryable: true,
    cause: reason,
  });
}
