// The log as a channel: every notification is logged (ERROR → error, WARNING → warn, INFO → info),
// redacted like any other channel's text. INFO that no route takes ends here.
import type { Logger } from 'pino';
import {
  abortedDelivery,
  type Channel,
  type ContentOptions,
  type DeliveryReceipt,
  type DeliverySendOptions,
  type OutboundMessage,
} from './channel.js';
import { contentPolicy, renderFacts } from './internal/render.js';
import { redactContext } from './redact.js';

export interface LogChannelOptions {
  readonly logger: Logger;
  readonly content?: ContentOptions;
}

/**
 * A channel that writes each message to the pino log. Never fails, except that a send whose
 * signal is already aborted writes nothing and throws `NOTIFY_ABORTED` (the write itself is
 * synchronous, so it cannot be cut halfway).
 */
export function createLogChannel(options: LogChannelOptions): Channel {
  const policy = contentPolicy(options.content);
  const logger = options.logger;
  return {
    kind: 'log',
    deliver(
      message: OutboundMessage,
      _recipients: readonly string[] = [],
      options: DeliverySendOptions = {},
    ): Promise<DeliveryReceipt> {
      if (options.signal?.aborted === true)
        return Promise.reject(abortedDelivery('log', 'log', options.signal));
      const n = message.notification;
      const facts = renderFacts(message, policy);
      const record = {
        // At the top level, once, like every other line about an operation: the runbook's
        // `jq 'select(.operationType == … and .operationId == …)'` finds the alert beside the decision.
        ...(n.operation !== undefined && {
          operationType: n.operation.type,
          operationId: n.operation.id,
          ...(n.operation.attempt !== undefined && { attempt: n.operation.attempt }),
        }),
        notification: {
          ...(n.id !== undefined && { id: n.id }),
          level: n.level,
          eventKind: facts.eventKind,
          ...(n.dedupKey !== undefined && { dedupKey: n.dedupKey }),
          time: facts.time,
          ...(message.digest !== undefined && { digestCount: message.digest.count }),
        },
        // A digest names the operations it counts, as the mail and the Slack message do: the body
        // and context are the first notification's, so without this only that one would be named.
        ...(facts.digest !== undefined && {
          digest: {
            summary: facts.digest.summary,
            examples: facts.digest.examples,
            ...(facts.digest.more > 0 && { more: facts.digest.more }),
          },
        }),
        body: facts.body,
        context: redactContext(n.context, policy.redact),
      };
      switch (n.level) {
        case 'ERROR':
          logger.error(record, facts.title);
          break;
        case 'WARNING':
          logger.warn(record, facts.title);
          break;
        case 'INFO':
          logger.info(record, facts.title);
          break;
      }
      return Promise.resolve({});
    },
    close: () => Promise.resolve(),
  };
}
