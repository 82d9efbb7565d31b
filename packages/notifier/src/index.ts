export {
  NOTIFICATION_LEVELS,
  dedupKeyFor,
  isNotificationLevel,
  notificationFor,
  toNotification,
  type Notification,
  type NotificationInput,
  type NotificationLevel,
  type NotificationOperation,
} from './notification.js';
export {
  emailChannelConfigSchema,
  notifierConfigSchema,
  parseNotifierConfig,
  routeConfigSchema,
  slackChannelConfigSchema,
  type EmailChannelConfig,
  type NotifierConfig,
  type NotifierConfigInput,
  type RouteConfig,
  type SlackChannelConfig,
} from './config.js';
export { NotificationDeliveryError, type ChannelKind, type DeliveryErrorOptions } from './delivery-error.js';
// Re-exported for compatibility: the one duration format lives in @ccat/errors.
export { formatDuration } from '@ccat/errors';
export { LOG_TARGET, resolveTargets, type DeliveryTarget } from './routing.js';
export {
  DEFAULT_SECRET_PATTERNS,
  REDACTED,
  createRedactor,
  redactContext,
  type Redactor,
  type RedactorOptions,
} from './redact.js';
export {
  abortedDelivery,
  type Channel,
  type ContentOptions,
  type DeliveryReceipt,
  type DeliverySendOptions,
  type OutboundMessage,
} from './channel.js';
export {
  classifySmtpError,
  createEmailChannel,
  type EmailChannelConfigInput,
  type EmailChannelOptions,
  type MailTransport,
  notificationMessageId,
} from './email-channel.js';
export {
  classifySlackError,
  createSlackChannel,
  type SlackChannelConfigInput,
  type SlackChannelOptions,
  type SlackClient,
} from './slack-channel.js';
export { createLogChannel, type LogChannelOptions } from './log-channel.js';
export {
  createNotifier,
  type DeliverOptions,
  type Notifier,
  type NotifierOptions,
  type SendReport,
  type TargetOutcome,
} from './notifier.js';
export type {
  ChannelResult,
  ClaimedNotification,
  ClaimRequest,
  ClaimResult,
  DigestExample,
  DigestSummary,
  OutboxLease,
  OutboxStore,
  Settlement,
} from './outbox-store.js';
export {
  createMemoryOutboxStore,
  type MemoryOutboxRow,
  type MemoryOutboxStore,
  type MemoryOutboxStoreOptions,
  type OutboxStatus,
} from './memory-outbox-store.js';
export {
  createOutboxRelay,
  type OutboxRelay,
  type OutboxRelayOptions,
  type RelayPassResult,
} from './relay.js';
