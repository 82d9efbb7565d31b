// Routing plus channels: "send this alert to the configured routes now", usable without an outbox,
// and the delivery step the outbox relay uses. Nothing here throws into a caller's recovery path.
import { describeThrown, sleep } from '@ccat/errors';
import { pino, type Logger } from 'pino';
import type { Channel, OutboundMessage, DeliveryReceipt } from './channel.js';
import { parseNotifierConfig, type NotifierConfig, type NotifierConfigInput } from './config.js';
import { NotificationDeliveryError } from './delivery-error.js';
import { createEmailChannel, type MailTransport } from './email-channel.js';
import { RateGate } from './internal/rate-gate.js';
import { createLogChannel } from './log-channel.js';
import {
  isNotificationLevel,
  toNotification,
  type Notification,
  type NotificationInput,
} from './notification.js';
import { createRedactor, type Redactor } from './redact.js';
import { resolveTargets, type DeliveryTarget } from './routing.js';
import { createSlackChannel, type SlackClient } from './slack-channel.js';

export interface NotifierOptions {
  /** The notifier's options (parsed here; an already parsed config is fine). */
  readonly config: NotifierConfigInput | NotifierConfig;
  /** Default: silent. */
  readonly logger?: Logger;
  /** A nodemailer transporter the caller owns (never closed here). Default: one from `config.email`. */
  readonly mailTransport?: MailTransport;
  /** A Slack WebClient the caller owns. Default: one from `config.slack`. */
  readonly slackClient?: SlackClient;
  /** Whole channels instead (another transport, tests). Never closed here. */
  readonly channels?: Partial<Record<'email' | 'slack', Channel>>;
  /** The clock for rate caps (epoch ms). */
  readonly now?: () => number;
}

/** One target's outcome. */
export type TargetOutcome =
  | { readonly status: 'sent'; readonly target: DeliveryTarget; readonly receipt: DeliveryReceipt }
  /** Failed for good: trying again will not help (bad credentials, unknown channel). */
  | { readonly status: 'failed'; readonly target: DeliveryTarget; readonly error: NotificationDeliveryError }
  /** Failed for now: try again later (no sooner than `retryAfterMs` when set). */
  | {
      readonly status: 'retry';
      readonly target: DeliveryTarget;
      readonly error: NotificationDeliveryError;
      readonly retryAfterMs: number | undefined;
    }
  /** Not attempted: the channel's rate cap or a rate-limit pause; due again in `retryAfterMs`. */
  | { readonly status: 'deferred'; readonly target: DeliveryTarget; readonly retryAfterMs: number };

export interface SendReport {
  /** True when every target was sent. */
  readonly ok: boolean;
  readonly outcomes: readonly TargetOutcome[];
}

export interface DeliverOptions {
  /** Wait for the channel's rate budget (default); false answers `deferred` at once instead. */
  readonly wait?: boolean;
  /**
   * Ends a wait early (the outcome is then `deferred`), and aborts a send in progress (the outcome
   * is then `retry` with code `NOTIFY_ABORTED`; the channel closes its connection).
   */
  readonly signal?: AbortSignal;
}

export interface Notifier extends AsyncDisposable {
  readonly config: NotifierConfig;
  /** The redactor every channel uses (configured patterns, built-ins, and the configured secrets). */
  readonly redact: Redactor;
  /** Where a notification goes: the log first, then the routed mail and Slack targets. */
  targets(notification: Pick<Notification, 'level' | 'eventKind'>): DeliveryTarget[];
  /**
   * Sends now to every routed target, each once, waiting for rate budget. Never throws: failures
   * are logged and reported. No retries here; the outbox relay retries.
   */
  send(notification: NotificationInput, options?: { readonly signal?: AbortSignal }): Promise<SendReport>;
  /** Delivers one message to one target, once. Never throws. */
  deliverTo(
    target: DeliveryTarget,
    message: OutboundMessage,
    options?: DeliverOptions,
  ): Promise<TargetOutcome>;
  /** Closes the channels it created (safe twice). */
  close(): Promise<void>;
}

/** Builds a notifier from its configuration. Throws ConfigurationError on invalid options. */
export function createNotifier(options: NotifierOptions): Notifier {
  const config = parseNotifierConfig(options.config);
  const logger = options.logger ?? pino({ level: 'silent' });
  const now = options.now ?? Date.now;
  const secrets = [config.email?.auth?.pass, config.slack?.token].filter((s): s is string => s !== undefined);
  const redact = createRedactor({
    secrets,
    patterns: config.content.secretPatterns,
    defaults: config.content.defaultSecretPatterns,
  });
  const content = {
    redact,
    maxSubjectLength: config.content.maxSubjectLength,
    maxBodyLength: config.content.maxBodyLength,
  };

  const owned: Channel[] = [];
  const channels: Partial<Record<'email' | 'slack' | 'log', Channel>> = {
    log: createLogChannel({ logger, content }),
  };
  const gates: Partial<Record<'email' | 'slack', RateGate>> = {};
  if (options.channels?.email !== undefined) channels.email = options.channels.email;
  else if (config.email !== undefined) {
    channels.email = createEmailChannel({
      config: config.email,
      ...(options.mailTransport !== undefined && { transport: options.mailTransport }),
      content,
      logger,
    });
    owned.push(channels.email);
  }
  if (options.channels?.slack !== undefined) channels.slack = options.channels.slack;
  else if (config.slack !== undefined) {
    channels.slack = createSlackChannel({
      config: config.slack,
      ...(options.slackClient !== undefined && { client: options.slackClient }),
      content,
      logger,
    });
    owned.push(channels.slack);
  }
  if (config.email !== undefined) gates.email = new RateGate(config.email.maxPerMinute, now);
  if (config.slack !== undefined) gates.slack = new RateGate(config.slack.maxPerMinute, now);

  const lifetime = new AbortController();
  let closing: Promise<void> | undefined;

  const targets = (n: Pick<Notification, 'level' | 'eventKind'>): DeliveryTarget[] =>
    resolveTargets(config.routes, n);

  async function deliverTo(
    target: DeliveryTarget,
    message: OutboundMessage,
    opts: DeliverOptions = {},
  ): Promise<TargetOutcome> {
    try {
      const channel = channels[target.channel];
      if (channel === undefined || closing !== undefined) {
        const why =
          closing !== undefined
            ? 'the notifier is closed'
            : `the ${target.channel} channel is not configured`;
        const error = new NotificationDeliveryError(`${target.channel}: ${why}`, {
          channel: target.channel,
          target: target.key,
          retryable: closing !== undefined,
        });
        return error.retryable
          ? { status: 'retry', target, error, retryAfterMs: undefined }
          : { status: 'failed', target, error };
      }
      const gate = target.channel === 'log' ? undefined : gates[target.channel];
      for (let wait = gate?.take() ?? 0; wait > 0; wait = gate?.take() ?? 0) {
        const signals = [lifetime.signal, ...(opts.signal === undefined ? [] : [opts.signal])];
        if (opts.wait === false || (await sleep(wait, AbortSignal.any(signals))))
          return { status: 'deferred', target, retryAfterMs: wait };
      }
      if (opts.signal?.aborted === true) return { status: 'deferred', target, retryAfterMs: 0 };
      const receipt = await channel.deliver(
        message,
        target.recipients,
        opts.signal === undefined ? {} : { signal: opts.signal },
      );
      return { status: 'sent', target, receipt };
    } catch (e) {
      const error =
        e instanceof NotificationDeliveryError
          ? e
          : new NotificationDeliveryError(`${target.channel}: ${redact(describeThrown(e, 500))}`, {
              channel: target.channel,
              target: target.key,
              cause: e,
            });
      if (error.retryAfterMs !== undefined && target.channel !== 'log')
        gates[target.channel]?.pause(error.retryAfterMs);
      return error.retryable
        ? { status: 'retry', target, error, retryAfterMs: error.retryAfterMs }
        : { status: 'failed', target, error };
    }
  }

  async function send(
    input: NotificationInput,
    opts: { readonly signal?: AbortSignal } = {},
  ): Promise<SendReport> {
    try {
      if (!isNotificationLevel(input.level))
        throw new TypeError(`invalid level ${describeThrown(input.level, 50)}`);
      const notification = toNotification(input, () => new Date(now()));
      const outcomes: TargetOutcome[] = [];
      for (const target of targets(notification)) {
        const outcome = await deliverTo(
          target,
          { notification },
          opts.signal === undefined ? {} : { signal: opts.signal },
        );
        outcomes.push(outcome);
        if (outcome.status === 'failed' || outcome.status === 'retry')
          logger.error(
            {
              channel: target.channel,
              target: target.key,
              code: outcome.error.code,
              retryable: outcome.error.retryable,
            },
            `notification not delivered: ${outcome.error.message}`,
          );
        else if (outcome.status === 'deferred')
          logger.warn(
            { channel: target.channel, target: target.key },
            'notification not delivered: interrupted while rate limited',
          );
      }
      return { ok: outcomes.every((o) => o.status === 'sent'), outcomes };
    } catch (e) {
      logger.error({ err: describeThrown(e, 500) }, 'notification not sent: invalid notification');
      return { ok: false, outcomes: [] };
    }
  }

  const close = (): Promise<void> =>
    (closing ??= (async () => {
      lifetime.abort();
      const results = await Promise.allSettled(owned.map((c) => c.close()));
      const errors = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
      if (errors.length > 0) throw new AggregateError(errors, 'closing notifier channels failed');
    })());

  return { config, redact, targets, send, deliverTo, close, [Symbol.asyncDispose]: close };
}
