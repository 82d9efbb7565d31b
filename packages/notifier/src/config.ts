// The notifier's options as one zod schema (DESIGN §8): apps compose it into their own config and
// parse once at start. Durations are milliseconds. Secrets (SMTP password, Slack token) arrive here
// as values the app read from the environment or a file; they are never logged.
import { renamedKeysError } from '@ccat/errors';
import { z } from 'zod';
import { timeoutsOverHalfLease } from './internal/lease-fit.js';
import { parseOptions } from './internal/parse.js';
import { NOTIFICATION_LEVELS } from './notification.js';

const ms = (dflt: number, min = 0) => z.number().int().min(min).default(dflt);
const perMinute = (dflt: number) => z.number().int().min(1).max(100_000).default(dflt);

/** A bare address; display names belong in `from` only. No CR/LF can reach a header. */
const emailAddress = z.email({ error: 'expected an email address like ops@example.org' });
const fromAddress = z.string().regex(/^(?:[^\r\n<>@]*<[^\s<>@]+@[^\s<>@]+>|[^\s<>@]+@[^\s<>@]+)$/, {
  error: 'expected "address@host" or "Name <address@host>" on one line',
});
const slackChannel = z.string().regex(/^[#@]?[A-Za-z0-9._-]{1,80}$/, {
  error: 'expected a Slack channel name (#ccat-alerts) or id (C0123ABCD)',
});
const regexSource = z.string().refine(
  (s) => {
    try {
      new RegExp(s);
      return true;
    } catch {
      return false;
    }
  },
  { error: 'expected a valid regular expression' },
);

export const emailChannelConfigSchema = z
  .object({
    /** SMTP server host name. */
    host: z.string().min(1),
    /** SMTP port (587: submission with STARTTLS; 465 with `secure`). */
    port: z.number().int().min(1).max(65_535).default(587),
    /** TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it. */
    secure: z.boolean().default(false),
    /** Refuse to send unless STARTTLS succeeds. */
    requireTLS: z.boolean().default(false),
    /** Never try STARTTLS (a trusted local relay). */
    ignoreTLS: z.boolean().default(false),
    /** Verify the server certificate (default true). */
    tlsRejectUnauthorized: z.boolean().default(true),
    /** SMTP login; leave it out for a relay that needs none. */
    auth: z
      .object({
        /** SMTP user name. */
        user: z.string().min(1),
        /** SMTP password; give it as SMTP_PASSWORD (or SMTP_PASSWORD_FILE), not in a file. */
        pass: z.string().min(1),
      })
      .strict()
      .optional(),
    /** Sender: `address@host` or `Name <address@host>`. */
    from: fromAddress,
    /** Put in front of every mail subject. */
    subjectPrefix: z.string().max(50).default('[CCAT]'),
    /** Mails per minute at most; more wait for a free slot (deferred, never dropped). */
    maxPerMinute: perMinute(30),
    /** How long to wait for the TCP connection to the SMTP server. At most half of `relay.leaseMs`. */
    connectionTimeoutMs: ms(10_000, 1),
    /** How long to wait for the server's greeting once connected. At most half of `relay.leaseMs`. */
    greetingTimeoutMs: ms(10_000, 1),
    /** How long the SMTP connection may stay idle (no reply to a command). At most half of `relay.leaseMs`. */
    socketTimeoutMs: ms(15_000, 1),
  })
  .strict();

export const slackChannelConfigSchema = z
  .object({
    /** Bot token (xoxb-…) allowed to post to the routed channels; give it as SLACK_TOKEN, not in a file. */
    token: z.string().min(1),
    /** Web API base URL (default Slack's); a proxy or a test server; http: or https:. */
    apiUrl: z.url({ protocol: /^https?$/, error: 'must be an http: or https: URL with a host' }).optional(),
    /** Slack messages per minute at most; more wait for a free slot (deferred, never dropped). */
    maxPerMinute: perMinute(20),
    /** Timeout of one Slack Web API call. At most half of `relay.leaseMs`. */
    timeoutMs: ms(10_000, 1),
  })
  .strict();

export const routeConfigSchema = z
  .object({
    /** Levels this route takes (all when absent). */
    levels: z.array(z.enum(NOTIFICATION_LEVELS)).min(1).optional(),
    /** Event kinds this route takes (all when absent). */
    eventKinds: z.array(z.string().min(1)).min(1).optional(),
    /** Mail recipients. */
    email: z.array(emailAddress).min(1).optional(),
    /** Slack channels. */
    slack: z.array(slackChannel).min(1).optional(),
  })
  .strict()
  .refine((r) => r.email !== undefined || r.slack !== undefined, {
    error: 'expected at least one of "email" or "slack" recipients',
  });

export const notifierConfigSchema = z
  .object({
    /** The SMTP mail channel (nodemailer); absent: no mail is sent. */
    email: emailChannelConfigSchema.optional(),
    /** The Slack channel (Web API `chat.postMessage`); absent: nothing goes to Slack. */
    slack: slackChannelConfigSchema.optional(),
    /** Every notification is logged; INFO goes nowhere else unless a route takes it. */
    routes: z.array(routeConfigSchema).default([]),
    /** Dedup windows: alike notifications become one digest. */
    dedup: z
      .object({
        /** Alike events (same dedup key) after the first, within this window, become one digest. 0: off. */
        windowMs: ms(600_000),
        /** Example operations a digest lists. */
        maxExamples: z.number().int().min(0).max(50).default(5),
      })
      .strict()
      .prefault({}),
    /** Delivery retries of an outbox row (exponential backoff with full jitter). */
    retry: z
      .strictObject(
        {
          /**
           * Delivery attempts of one outbox row before it is marked failed. ERROR rows are never marked
           * failed for running out of attempts: past the limit they are retried every `maxMs`.
           */
          maxAttempts: z.number().int().min(1).max(1000).default(12),
          /** Longest wait before the second delivery attempt (a uniform draw below it); it doubles with each attempt. */
          baseMs: ms(1_000, 1),
          /** No wait between delivery attempts is longer than this; also the retry interval of an undelivered ERROR past `maxAttempts`. */
          maxMs: ms(900_000, 1),
        },
        renamedKeysError({
          baseDelayMs: 'renamed: use baseMs (same meaning; the delay is now a uniform draw below it)',
          maxDelayMs: 'renamed: use maxMs (same meaning)',
          jitter: 'removed: every delay is drawn from its whole window (full jitter); leave it out',
        }),
      )
      .prefault({}),
    /** The outbox relay that delivers the notifications rows. */
    relay: z
      .object({
        /** Pause between relay passes; a pass that found a full batch is followed at once. */
        pollIntervalMs: ms(1_000, 1),
        /** Outbox rows claimed per pass. */
        batchSize: z.number().int().min(1).max(10_000).default(100),
        /**
         * How long a claimed row is ours without renewal. A relay renews the leases of the rows it is
         * delivering every third of this, and aborts a send when a lease is lost or would lapse; a
         * crashed relay's rows come back within about one lease. Every channel timeout must be at most
         * half of it.
         */
        leaseMs: ms(30_000, 100),
        /** Rows delivered in parallel. */
        concurrency: z.number().int().min(1).max(64).default(4),
        /** On close, how long the pass in progress may take to finish. */
        shutdownTimeoutMs: ms(10_000),
      })
      .strict()
      .prefault({}),
    /** Limits and redaction applied to every message. */
    content: z
      .object({
        /** Longest subject or title; longer ones are cut with a marker. */
        maxSubjectLength: z.number().int().min(20).max(998).default(200),
        /** Longest body; longer ones are cut with a marker. */
        maxBodyLength: z.number().int().min(100).max(1_000_000).default(10_000),
        /** Extra secret patterns (regular expression sources, matched case-insensitive). */
        secretPatterns: z.array(regexSource).default([]),
        /** Also apply the built-in secret patterns. */
        defaultSecretPatterns: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    c.routes.forEach((r, i) => {
      if (r.email !== undefined && c.email === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'email'],
          message: 'routes mail here, but the "email" channel is not configured',
        });
      if (r.slack !== undefined && c.slack === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['routes', i, 'slack'],
          message: 'routes to Slack here, but the "slack" channel is not configured',
        });
    });
    for (const problem of timeoutsOverHalfLease(c, c.relay.leaseMs))
      ctx.addIssue({ code: 'custom', path: problem.path, message: problem.message });
    if (c.retry.maxMs < c.retry.baseMs)
      ctx.addIssue({ code: 'custom', path: ['retry', 'maxMs'], message: 'expected maxMs >= baseMs' });
  });

/** What an app writes (defaults may be left out). */
export type NotifierConfigInput = z.input<typeof notifierConfigSchema>;
/** The parsed, complete configuration. */
export type NotifierConfig = Readonly<z.output<typeof notifierConfigSchema>>;
export type RouteConfig = Readonly<z.output<typeof routeConfigSchema>>;
export type EmailChannelConfig = Readonly<z.output<typeof emailChannelConfigSchema>>;
export type SlackChannelConfig = Readonly<z.output<typeof slackChannelConfigSchema>>;

/**
 * Parses notifier options into a frozen, complete configuration. Throws a ConfigurationError whose
 * message has one line per problem: path, what was expected, what was given (secrets masked).
 */
export function parseNotifierConfig(
  input: unknown,
  options: { readonly path?: string } = {},
): NotifierConfig {
  return parseOptions(notifierConfigSchema, input, options.path ?? 'notifier');
}
