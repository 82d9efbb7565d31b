// The notifier's options as one zod schema (DESIGN §8): apps compose it into their own config and
// parse once at start. Durations are milliseconds. Secrets (SMTP password, Slack token) arrive here
// as values the app read from the environment or a file; they are never logged.
import { z } from 'zod';
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
    host: z.string().min(1),
    port: z.number().int().min(1).max(65_535).default(587),
    /** TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it. */
    secure: z.boolean().default(false),
    /** Refuse to send unless STARTTLS succeeds. */
    requireTLS: z.boolean().default(false),
    /** Never try STARTTLS (a trusted local relay). */
    ignoreTLS: z.boolean().default(false),
    /** Verify the server certificate (default true). */
    tlsRejectUnauthorized: z.boolean().default(true),
    auth: z
      .object({ user: z.string().min(1), pass: z.string().min(1) })
      .strict()
      .optional(),
    from: fromAddress,
    subjectPrefix: z.string().max(50).default('[CCAT]'),
    maxPerMinute: perMinute(30),
    connectionTimeoutMs: ms(10_000, 1),
    greetingTimeoutMs: ms(10_000, 1),
    socketTimeoutMs: ms(30_000, 1),
  })
  .strict();

export const slackChannelConfigSchema = z
  .object({
    token: z.string().min(1),
    /** Web API base URL (default Slack's); a proxy or a test server. */
    apiUrl: z.url().optional(),
    maxPerMinute: perMinute(20),
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
    email: emailChannelConfigSchema.optional(),
    slack: slackChannelConfigSchema.optional(),
    /** Every notification is logged; INFO goes nowhere else unless a route takes it. */
    routes: z.array(routeConfigSchema).default([]),
    dedup: z
      .object({
        /** Alike events (same dedup key) after the first, within this window, become one digest. 0: off. */
        windowMs: ms(600_000),
        /** Example operations a digest lists. */
        maxExamples: z.number().int().min(0).max(50).default(5),
      })
      .strict()
      .prefault({}),
    retry: z
      .object({
        /** Delivery attempts of one outbox row before it is marked failed. */
        maxAttempts: z.number().int().min(1).max(1000).default(12),
        baseDelayMs: ms(1_000, 1),
        maxDelayMs: ms(900_000, 1),
        /** Fraction of each delay that is random (0..1). */
        jitter: z.number().min(0).max(1).default(0.2),
      })
      .strict()
      .prefault({}),
    relay: z
      .object({
        pollIntervalMs: ms(1_000, 1),
        batchSize: z.number().int().min(1).max(10_000).default(100),
        /** How long a claimed row is ours; a crashed relay's rows come back after it. */
        leaseMs: ms(120_000, 100),
        /** Rows delivered in parallel. */
        concurrency: z.number().int().min(1).max(64).default(4),
        shutdownTimeoutMs: ms(10_000),
      })
      .strict()
      .prefault({}),
    content: z
      .object({
        maxSubjectLength: z.number().int().min(20).max(998).default(200),
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
    if (c.retry.maxDelayMs < c.retry.baseDelayMs)
      ctx.addIssue({
        code: 'custom',
        path: ['retry', 'maxDelayMs'],
        message: 'expected maxDelayMs >= baseDelayMs',
      });
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
