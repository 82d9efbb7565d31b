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
    host: z.string().min(1).describe('SMTP server host name.'),
    port: z
      .number()
      .int()
      .min(1)
      .max(65_535)
      .default(587)
      .describe('SMTP port (587: submission with STARTTLS; 465 with `secure`).'),
    secure: z
      .boolean()
      .default(false)
      .describe('TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it.'),
    requireTLS: z.boolean().default(false).describe('Refuse to send unless STARTTLS succeeds.'),
    ignoreTLS: z.boolean().default(false).describe('Never try STARTTLS (a trusted local relay).'),
    tlsRejectUnauthorized: z
      .boolean()
      .default(true)
      .describe('Verify the server certificate (default true).'),
    auth: z
      .object({
        user: z.string().min(1).describe('SMTP user name.'),
        pass: z
          .string()
          .min(1)
          .describe('SMTP password; give it as SMTP_PASSWORD (or SMTP_PASSWORD_FILE), not in a file.'),
      })
      .strict()
      .optional()
      .describe('SMTP login; leave it out for a relay that needs none.'),
    from: fromAddress.describe('Sender: `address@host` or `Name <address@host>`.'),
    subjectPrefix: z.string().max(50).default('[CCAT]').describe('Put in front of every mail subject.'),
    maxPerMinute: perMinute(30).describe(
      'Mails per minute at most; more wait for a free slot (deferred, never dropped).',
    ),
    connectionTimeoutMs: ms(10_000, 1).describe(
      'How long to wait for the TCP connection to the SMTP server. At most half of `relay.leaseMs`.',
    ),
    greetingTimeoutMs: ms(10_000, 1).describe(
      "How long to wait for the server's greeting once connected. At most half of `relay.leaseMs`.",
    ),
    socketTimeoutMs: ms(15_000, 1).describe(
      'How long the SMTP connection may stay idle (no reply to a command). At most half of `relay.leaseMs`.',
    ),
  })
  .strict();

export const slackChannelConfigSchema = z
  .object({
    token: z
      .string()
      .min(1)
      .describe(
        'Bot token (xoxb-…) allowed to post to the routed channels; give it as SLACK_TOKEN, not in a file.',
      ),
    apiUrl: z
      .url({ protocol: /^https?$/, error: 'must be an http: or https: URL with a host' })
      .optional()
      .describe("Web API base URL (default Slack's); a proxy or a test server; http: or https:."),
    maxPerMinute: perMinute(20).describe(
      'Slack messages per minute at most; more wait for a free slot (deferred, never dropped).',
    ),
    timeoutMs: ms(10_000, 1).describe('Timeout of one Slack Web API call. At most half of `relay.leaseMs`.'),
  })
  .strict();

export const routeConfigSchema = z
  .object({
    levels: z
      .array(z.enum(NOTIFICATION_LEVELS))
      .min(1)
      .optional()
      .describe('Levels this route takes (all when absent).'),
    eventKinds: z
      .array(z.string().min(1))
      .min(1)
      .optional()
      .describe('Event kinds this route takes (all when absent).'),
    email: z
      .array(emailAddress)
      .min(1)
      .optional()
      .describe('Mail recipients; the `email` channel must be configured.'),
    slack: z
      .array(slackChannel)
      .min(1)
      .optional()
      .describe('Slack channels; the `slack` channel must be configured.'),
  })
  .strict()
  .refine((r) => r.email !== undefined || r.slack !== undefined, {
    error: 'expected at least one of "email" or "slack" recipients',
  });

export const notifierConfigSchema = z
  .object({
    email: emailChannelConfigSchema
      .optional()
      .describe('The SMTP mail channel (nodemailer); absent: no mail is sent.'),
    slack: slackChannelConfigSchema
      .optional()
      .describe('The Slack channel (Web API `chat.postMessage`); absent: nothing goes to Slack.'),
    routes: z
      .array(routeConfigSchema)
      .default([])
      .describe(
        'Every notification is logged; INFO goes nowhere else unless a route takes it. Each route names `email` or `slack` recipients, or both.',
      ),
    dedup: z
      .object({
        windowMs: ms(600_000).describe(
          'Alike events (same dedup key) after the first, within this window, become one digest. 0: off.',
        ),
        maxExamples: z
          .number()
          .int()
          .min(0)
          .max(50)
          .default(5)
          .describe('Example operations a digest lists.'),
      })
      .strict()
      .prefault({})
      .describe('Dedup windows: alike notifications become one digest.'),
    retry: z
      .strictObject(
        {
          maxAttempts: z
            .number()
            .int()
            .min(1)
            .max(1000)
            .default(12)
            .describe(
              'Delivery attempts of one outbox row before it is marked failed. ERROR rows are never marked failed for running out of attempts: past the limit they are retried every `maxMs`.',
            ),
          baseMs: ms(1_000, 1).describe(
            'Longest wait before the second delivery attempt (a uniform draw below it); it doubles with each attempt.',
          ),
          maxMs: ms(900_000, 1).describe(
            'No wait between delivery attempts is longer than this; also the retry interval of an undelivered ERROR past `maxAttempts`. At least `baseMs`.',
          ),
        },
        renamedKeysError({
          baseDelayMs: 'renamed: use baseMs (same meaning; the delay is now a uniform draw below it)',
          maxDelayMs: 'renamed: use maxMs (same meaning)',
          jitter: 'removed: every delay is drawn from its whole window (full jitter); leave it out',
        }),
      )
      .prefault({})
      .describe('Delivery retries of an outbox row (exponential backoff with full jitter).'),
    relay: z
      .object({
        pollIntervalMs: ms(1_000, 1).describe(
          'Pause between relay passes; a pass that found a full batch is followed at once.',
        ),
        batchSize: z.number().int().min(1).max(10_000).default(100).describe('Outbox rows claimed per pass.'),
        leaseMs: ms(30_000, 100).describe(
          "How long a claimed row is ours without renewal. A relay renews the leases of the rows it is delivering every third of this, and aborts a send when a lease is lost or would lapse; a crashed relay's rows come back within about one lease. Every channel timeout must be at most half of it.",
        ),
        concurrency: z.number().int().min(1).max(64).default(4).describe('Rows delivered in parallel.'),
        shutdownTimeoutMs: ms(10_000).describe('On close, how long the pass in progress may take to finish.'),
      })
      .strict()
      .prefault({})
      .describe('The outbox relay that delivers the notifications rows.'),
    content: z
      .object({
        maxSubjectLength: z
          .number()
          .int()
          .min(20)
          .max(998)
          .default(200)
          .describe('Longest subject or title; longer ones are cut with a marker.'),
        maxBodyLength: z
          .number()
          .int()
          .min(100)
          .max(1_000_000)
          .default(10_000)
          .describe('Longest body; longer ones are cut with a marker.'),
        secretPatterns: z
          .array(regexSource)
          .default([])
          .describe('Extra secret patterns (valid regular expression sources, matched case-insensitive).'),
        defaultSecretPatterns: z.boolean().default(true).describe('Also apply the built-in secret patterns.'),
      })
      .strict()
      .prefault({})
      .describe('Limits and redaction applied to every message.'),
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
