// Slack through the Web API's chat.postMessage. The WebClient does no retrying of its own
// (retries: 0, rate-limited calls rejected): the relay owns retries and honours Retry-After.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  ErrorCode,
  LogLevel,
  WebClient,
  type ChatPostMessageArguments,
  type ChatPostMessageResponse,
  type FetchFunction,
  type Logger as SlackLogger,
} from '@slack/web-api';
import { formatDuration } from '@ccat/errors';
import { pino, type Logger } from 'pino';
import type { z } from 'zod';
import {
  abortedDelivery,
  type Channel,
  type ContentOptions,
  type DeliveryReceipt,
  type DeliverySendOptions,
  type OutboundMessage,
} from './channel.js';
import { slackChannelConfigSchema } from './config.js';
import { NotificationDeliveryError } from './delivery-error.js';
import { parseOptions, valueAt } from './internal/parse.js';
import { isAborted, raceAbort } from './internal/race-abort.js';
import { contentPolicy, renderFacts } from './internal/render.js';
import { renderSlack } from './internal/render-slack.js';
import { cut, singleLine } from './internal/text.js';
import { createRedactor, type Redactor } from './redact.js';

export type SlackChannelConfigInput = z.input<typeof slackChannelConfigSchema>;

/** The part of a WebClient the channel uses. */
export interface SlackClient {
  readonly chat: {
    postMessage(args: ChatPostMessageArguments): Promise<ChatPostMessageResponse>;
  };
}

export interface SlackChannelOptions {
  /** Token and limits; with `client` given, the token and API URL are not used. */
  readonly config: SlackChannelConfigInput;
  /** A client the caller owns. Default: a WebClient with retries off. */
  readonly client?: SlackClient;
  readonly content?: ContentOptions;
  readonly logger?: Logger;
}

/** Platform errors that mean the token is wrong, revoked or lacks rights. */
const AUTH_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'team_access_not_granted',
  'org_login_required',
  'ekm_access_denied',
]);
/** Platform errors about the channel or the message: sending the same again gets the same answer. */
const REJECTED_ERRORS = new Set([
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'restricted_action',
  'restricted_action_read_only_channel',
  'restricted_action_thread_only_channel',
  'restricted_action_non_threadable_channel',
  'invalid_blocks',
  'invalid_blocks_format',
  'invalid_arguments',
  'invalid_arg_name',
  'msg_too_long',
  'no_text',
  'too_many_attachments',
  'invalid_json',
  'json_not_object',
  'invalid_form_data',
  'invalid_charset',
  'method_deprecated',
  'deprecated_endpoint',
]);

/** Maps what the WebClient throws to a NotificationDeliveryError that says whether retrying may help. */
export function classifySlackError(
  error: unknown,
  target: string,
  redact: Redactor = createRedactor(),
): NotificationDeliveryError {
  const make = (
    why: string,
    code: string,
    retryable: boolean,
    extra: { retryAfterMs?: number; slackError?: string } = {},
  ) =>
    new NotificationDeliveryError(
      `slack (${target}): ${cut(singleLine(redact(why)), 500)}; ${retryable ? 'will retry' : 'not retried'}`,
      {
        channel: 'slack',
        target,
        code,
        retryable,
        ...(extra.retryAfterMs !== undefined && { retryAfterMs: extra.retryAfterMs }),
        ...(extra.slackError !== undefined && { context: { slackError: extra.slackError } }),
        cause: error,
      },
    );
  switch (valueAt(error, ['code'])) {
    case ErrorCode.RateLimitedError: {
      const seconds = Number(valueAt(error, ['retryAfter']));
      const retryAfterMs = Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 60_000;
      return make(`rate limited, retry after ${formatDuration(retryAfterMs)}`, 'NOTIFY_RATE_LIMITED', true, {
        retryAfterMs,
      });
    }
    case ErrorCode.PlatformError: {
      const raw = valueAt(error, ['data', 'error']);
      const slackError = typeof raw === 'string' ? raw : 'unknown_error';
      if (AUTH_ERRORS.has(slackError))
        return make(`${slackError}: the token is wrong or lacks rights`, 'NOTIFY_AUTH_FAILED', false, {
          slackError,
        });
      if (REJECTED_ERRORS.has(slackError))
        return make(`${slackError}: Slack refused this channel or message`, 'NOTIFY_REJECTED', false, {
          slackError,
        });
      if (slackError === 'ratelimited' || slackError === 'rate_limited')
        return make(slackError, 'NOTIFY_RATE_LIMITED', true, { retryAfterMs: 60_000, slackError });
      return make(`${slackError}: Slack failed`, 'NOTIFY_UNAVAILABLE', true, { slackError });
    }
    case ErrorCode.HTTPError: {
      const status = Number(valueAt(error, ['statusCode']));
      const retryable = !(status >= 400 && status < 500) || status === 408;
      return make(
        `HTTP ${status} from the Slack API`,
        retryable ? 'NOTIFY_UNAVAILABLE' : 'NOTIFY_REJECTED',
        retryable,
      );
    }
    case ErrorCode.RequestError: {
      const original = valueAt(error, ['original']);
      return make(
        `the Slack API is unreachable: ${original instanceof Error ? original.message : String(original)}`,
        'NOTIFY_UNAVAILABLE',
        true,
      );
    }
    default:
      return make(error instanceof Error ? error.message : String(error), 'NOTIFY_DELIVERY_FAILED', true);
  }
}

/** The WebClient's own logging, at debug level in ours (we report failures ourselves). */
function slackLogger(logger: Logger): SlackLogger {
  let level = LogLevel.DEBUG;
  const log = (...msg: unknown[]): void =>
    logger.debug({ component: 'slack-web-api' }, msg.map(String).join(' '));
  return {
    debug: log,
    info: log,
    warn: log,
    error: log,
    setLevel: (l: LogLevel) => {
      level = l;
    },
    getLevel: () => level,
    setName: () => undefined,
  };
}

/** A channel that posts each message to a Slack channel (one recipient is one Slack channel). */
export function createSlackChannel(options: SlackChannelOptions): Channel {
  const config = parseOptions(slackChannelConfigSchema, options.config, 'slack');
  const logger = options.logger ?? pino({ level: 'silent' });
  const redact = options.content?.redact ?? createRedactor({ secrets: [config.token] });
  const policy = contentPolicy({ ...options.content, redact });
  // The WebClient has no per-call signal; its `fetch` hook does. The signal of the send in progress
  // travels to that hook through the async context and joins the client's own timeout signal, so an
  // aborted send closes its HTTP request.
  const sendSignal = new AsyncLocalStorage<AbortSignal>();
  const fetchWithSendSignal: FetchFunction = (url, init) => {
    const extra = sendSignal.getStore();
    if (extra === undefined) return globalThis.fetch(url, init);
    const signal = init?.signal === undefined ? extra : AbortSignal.any([init.signal, extra]);
    return globalThis.fetch(url, { ...init, signal });
  };
  const client: SlackClient =
    options.client ??
    new WebClient(config.token, {
      ...(config.apiUrl !== undefined && { slackApiUrl: config.apiUrl }),
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: config.timeoutMs,
      allowAbsoluteUrls: false,
      fetch: fetchWithSendSignal,
      logger: slackLogger(logger.child({ channel: 'slack' })),
    });
  let closed = false;

  return {
    kind: 'slack',
    async deliver(
      message: OutboundMessage,
      recipients: readonly string[],
      options: DeliverySendOptions = {},
    ): Promise<DeliveryReceipt> {
      const target = `slack:${recipients.join(',')}`;
      const signal = options.signal;
      if (signal?.aborted === true) throw abortedDelivery('slack', target, signal);
      if (closed)
        throw new NotificationDeliveryError('slack: channel closed', {
          channel: 'slack',
          target,
          retryable: true,
        });
      if (recipients.length !== 1)
        throw new NotificationDeliveryError(`slack: expected one Slack channel, got ${recipients.length}`, {
          channel: 'slack',
          target,
          retryable: false,
        });
      const rendered = renderSlack(renderFacts(message, policy));
      try {
        const post = () =>
          client.chat.postMessage({
            channel: recipients[0]!,
            text: rendered.text,
            blocks: rendered.blocks as unknown as NonNullable<
              Extract<ChatPostMessageArguments, { blocks: unknown }>['blocks']
            >,
            mrkdwn: true,
            parse: 'none',
            link_names: false,
            unfurl_links: false,
            unfurl_media: false,
          });
        const result =
          signal === undefined ? await post() : await raceAbort(sendSignal.run(signal, post), signal);
        return result.ts === undefined ? {} : { id: result.ts };
      } catch (e) {
        if (signal !== undefined && isAborted(signal)) throw abortedDelivery('slack', target, signal);
        throw classifySlackError(e, target, redact);
      }
    },
    close(): Promise<void> {
      // A WebClient holds no connections of its own (fetch pools them); nothing to release.
      closed = true;
      return Promise.resolve();
    },
  };
}
