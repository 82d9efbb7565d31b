// Email through nodemailer's SMTP transport: plain text, one mail per message to all its recipients.
import { hostname } from 'node:os';
import nodemailer, { type SendMailOptions } from 'nodemailer';
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
import { emailChannelConfigSchema } from './config.js';
import { NotificationDeliveryError } from './delivery-error.js';
import { parseOptions, valueAt } from './internal/parse.js';
import { isAborted, raceAbort } from './internal/race-abort.js';
import { renderFacts, contentPolicy } from './internal/render.js';
import { renderEmail } from './internal/render-email.js';
import { cut, singleLine } from './internal/text.js';
import { createRedactor, type Redactor } from './redact.js';

export type EmailChannelConfigInput = z.input<typeof emailChannelConfigSchema>;

/**
 * The part of a nodemailer transporter the channel uses. `signal` (nodemailer ≥ 10.6, SMTP and
 * pooled SMTP transports) aborts the send and closes its SMTP connection; the promise then rejects
 * with an `AbortError` (code `EABORT`). A transport that ignores it is still raced against the signal.
 */
export interface MailTransport {
  sendMail(mail: SendMailOptions & { readonly signal?: AbortSignal }): Promise<{
    readonly messageId?: string;
    readonly accepted?: readonly unknown[];
    readonly rejected?: readonly unknown[];
  }>;
  close?(): void;
}

export interface EmailChannelOptions {
  /** SMTP settings; with `transport` given, only `from`, `subjectPrefix` and the content limits are used. */
  readonly config: EmailChannelConfigInput;
  /** A transporter the caller owns (never closed here). Default: one made from `config`. */
  readonly transport?: MailTransport;
  readonly content?: ContentOptions;
  readonly logger?: Logger;
}

/** SMTP replies that say the credentials are wrong or missing: waiting does not fix them. */
const AUTH_REPLIES = new Set([530, 534, 535, 538]);
const NETWORK_CODES = new Set([
  'ECONNECTION',
  'ESOCKET',
  'ETIMEDOUT',
  'EDNS',
  'ETLS',
  'EPROTOCOL',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
]);

/** Maps what nodemailer throws to a NotificationDeliveryError that says whether retrying may help. */
export function classifySmtpError(
  error: unknown,
  redact: Redactor = createRedactor(),
): NotificationDeliveryError {
  const code =
    typeof valueAt(error, ['code']) === 'string' ? (valueAt(error, ['code']) as string) : undefined;
  const reply =
    typeof valueAt(error, ['responseCode']) === 'number'
      ? (valueAt(error, ['responseCode']) as number)
      : undefined;
  const permanent = valueAt(error, ['permanent']) === true;
  const raw = error instanceof Error ? error.message : String(error);
  const detail = cut(singleLine(redact(raw)), 500);
  const make = (why: string, ccatCode: string, retryable: boolean) =>
    new NotificationDeliveryError(
      `email: ${why} (${[code, reply].filter((x) => x !== undefined).join(' ') || 'no code'}: ${detail}); ${retryable ? 'will retry' : 'not retried'}`,
      {
        channel: 'email',
        target: 'email',
        code: ccatCode,
        retryable,
        context: {
          ...(code !== undefined && { smtpCode: code }),
          ...(reply !== undefined && { smtpReply: reply }),
        },
        cause: error,
      },
    );
  if (code === 'EAUTH' || code === 'ENOAUTH' || (reply !== undefined && AUTH_REPLIES.has(reply)))
    return make('SMTP authentication failed, the credentials are wrong', 'NOTIFY_AUTH_FAILED', false);
  if (code === 'ECONFIG') return make('the mail transport is misconfigured', 'NOTIFY_MISCONFIGURED', false);
  if (permanent || (reply !== undefined && reply >= 500 && reply !== 503))
    return make('the SMTP server rejected the message for good', 'NOTIFY_REJECTED', false);
  if (reply !== undefined && reply >= 400)
    return make('the SMTP server deferred the message', 'NOTIFY_DEFERRED', true);
  if (code !== undefined && NETWORK_CODES.has(code))
    return make('the SMTP server is unreachable', 'NOTIFY_UNAVAILABLE', true);
  return make('sending failed', 'NOTIFY_DELIVERY_FAILED', true);
}

/** A channel that mails each message, as plain text, to its recipients. */
export function createEmailChannel(options: EmailChannelOptions): Channel {
  const config = parseOptions(emailChannelConfigSchema, options.config, 'email');
  const logger = options.logger ?? pino({ level: 'silent' });
  const redact =
    options.content?.redact ??
    createRedactor({ secrets: config.auth === undefined ? [] : [config.auth.pass] });
  const policy = contentPolicy({ ...options.content, redact });
  const own = options.transport === undefined;
  const transport: MailTransport = options.transport ?? ownTransport();
  function ownTransport(): MailTransport {
    const t = nodemailer.createTransport({
      host: config.host,
      port: config.port,
      secure: config.secure,
      requireTLS: config.requireTLS,
      ignoreTLS: config.ignoreTLS,
      tls: { rejectUnauthorized: config.tlsRejectUnauthorized },
      ...(config.auth !== undefined && { auth: { user: config.auth.user, pass: config.auth.pass } }),
      connectionTimeout: config.connectionTimeoutMs,
      greetingTimeout: config.greetingTimeoutMs,
      socketTimeout: config.socketTimeoutMs,
      // An aborted send (lease lost or about to lapse) must not leave its socket open for the
      // default 5 s close grace: a hung server would keep it; destroy it at once (nodemailer README,
      // "SMTP socket close timeout").
      socketCloseTimeout: 0,
      disableFileAccess: true,
      disableUrlAccess: true,
      logger: false,
      debug: false,
    });
    // The transport is an EventEmitter: an 'error' it emits outside a send (a pooled or idle
    // connection's socket failing) would end the process unhandled. A send's own failure still
    // rejects that send.
    t.on('error', (e: Error) =>
      logger.warn({ channel: 'email', err: e.message }, 'SMTP transport error (the next send reconnects)'),
    );
    return t;
  }
  let closed = false;

  return {
    kind: 'email',
    async deliver(
      message: OutboundMessage,
      recipients: readonly string[],
      options: DeliverySendOptions = {},
    ): Promise<DeliveryReceipt> {
      const signal = options.signal;
      if (signal?.aborted === true) throw abortedDelivery('email', 'email', signal);
      if (closed)
        throw new NotificationDeliveryError('email: channel closed', { channel: 'email', retryable: true });
      if (recipients.length === 0)
        throw new NotificationDeliveryError('email: no recipients', { channel: 'email', retryable: false });
      const facts = renderFacts(message, policy);
      const mail = renderEmail(facts, {
        subjectPrefix: config.subjectPrefix,
        maxSubjectLength: policy.maxSubjectLength,
      });
      const n = message.notification;
      const headers: Record<string, string> = {
        'X-CCAT-Level': n.level,
        'X-CCAT-Event': cut(singleLine(n.eventKind), 100),
      };
      if (n.id !== undefined) headers['X-CCAT-Notification-Id'] = cut(singleLine(n.id), 40);
      const messageId = n.id === undefined ? undefined : notificationMessageId(n.id, config.from);
      let info: Awaited<ReturnType<MailTransport['sendMail']>>;
      try {
        info = await raceAbort(
          transport.sendMail({
            from: config.from,
            to: [...recipients],
            subject: mail.subject,
            text: mail.text,
            headers,
            ...(messageId !== undefined && { messageId }),
            ...(signal !== undefined && { signal }),
          }),
          signal,
        );
      } catch (e) {
        if (signal !== undefined && isAborted(signal)) throw abortedDelivery('email', 'email', signal);
        throw classifySmtpError(e, redact);
      }
      const rejected = info.rejected ?? [];
      if (rejected.length > 0) {
        if ((info.accepted ?? []).length === 0)
          throw new NotificationDeliveryError(`email: every recipient was rejected; not retried`, {
            channel: 'email',
            target: 'email',
            code: 'NOTIFY_REJECTED',
            retryable: false,
          });
        logger.warn({ channel: 'email', rejected: rejected.length }, 'some mail recipients were rejected');
      }
      return info.messageId === undefined ? {} : { id: info.messageId };
    },
    close(): Promise<void> {
      if (!closed) {
        closed = true;
        if (own) transport.close?.();
      }
      return Promise.resolve();
    },
  };
}

/**
 * The Message-ID of a notification's mail: `<ccat-notification-<id>@<domain>>`, the same every time
 * the notification (or digest: it has an id of its own) is sent. A mail sent twice (a relay frozen
 * while waiting for the server's reply to the end of the message, DESIGN §7's admitted duplicate)
 * then carries one Message-ID, which mail systems and clients use to collapse copies (RFC 5322
 * §3.6.4: the id names one message). The domain is the From address's, else this host's name;
 * both parts are reduced to characters valid in a dot-atom.
 */
export function notificationMessageId(notificationId: string, from: string): string {
  const local = notificationId.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 64) || 'unknown';
  const address = /<([^>]*)>/.exec(from)?.[1] ?? from;
  const at = address.lastIndexOf('@');
  const domain =
    (at < 0 ? '' : address.slice(at + 1))
      .trim()
      .replace(/[^A-Za-z0-9.-]/g, '')
      .replace(/^\.+|\.+$/g, '')
      .slice(0, 200) ||
    hostname()
      .replace(/[^A-Za-z0-9.-]/g, '')
      .slice(0, 200) ||
    'localhost';
  return `<ccat-notification-${local}@${domain}>`;
}
