import type { ChannelKind } from './delivery-error.js';
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

/** A place notifications go. */
export interface Channel {
  readonly kind: ChannelKind;
  /**
   * Delivers one message to `recipients` (mail addresses, Slack channels; the log takes none).
   * Throws a NotificationDeliveryError that says whether trying again may help.
   */
  deliver(message: OutboundMessage, recipients: readonly string[]): Promise<DeliveryReceipt>;
  /** Releases what the channel created (never a transport or client the caller passed in). */
  close(): Promise<void>;
}
