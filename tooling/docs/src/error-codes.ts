// The runbook's error-code part, from `ERROR_CODES` (@ccat/errors), the one table of every code:
// class, retryability, own limit, meaning and advice. Which inputs `classifyError` maps to a code is
// asked of the classifier itself, with a probe per key of `CLASSIFIER_RULE_KEYS`.
import {
  adviceFor,
  CLASSIFIER_RULE_KEYS,
  classifyError,
  ERROR_CODES,
  type ErrorCodeEntry,
} from '@ccat/errors';
import { recoveryPolicySchema } from '@ccat/recovery-handlers';
import { code, escapeCell, table } from './markdown.js';

/** Code → the inputs `classifyError` maps to it ("errno `ENOSPC`", "SQLSTATE class `08…`"). */
function classifierInputs(): Map<string, string[]> {
  const { errno, sqlstate, sqlstateClass, redisReply } = CLASSIFIER_RULE_KEYS;
  const pg = (state: string) => ({ code: state, severity: 'ERROR' });
  const probes: [Record<string, unknown>, string][] = [
    ...errno.map((k): [object, string] => [{ code: k }, `errno ${code(k)}`]),
    ...sqlstate.map((k): [object, string] => [pg(k), `SQLSTATE ${code(k)}`]),
    ...sqlstateClass.map((k): [object, string] => [pg(`${k}ZZZ`), `SQLSTATE class ${code(`${k}…`)}`]),
    [pg('ZZ999'), 'any other SQLSTATE'],
    ...redisReply.map((w): [object, string] => [
      { name: 'ReplyError', message: `${w} x` },
      `reply ${code(w)}`,
    ]),
  ] as [Record<string, unknown>, string][];
  const out = new Map<string, string[]>();
  for (const [fields, input] of probes) {
    const c = classifyError(Object.assign(new Error('probe'), fields)).code;
    out.set(c, [...(out.get(c) ?? []), input]);
  }
  return out;
}

/** The error-code sections of the runbook (Markdown, before prettier). */
export function renderErrorCodes(): string {
  const defaultMax = recoveryPolicySchema.parse({}).defaultMaxRetries;
  const inputs = classifierInputs();
  const rows = Object.entries(ERROR_CODES as Readonly<Record<string, ErrorCodeEntry>>).sort(([a], [b]) =>
    a < b ? -1 : 1,
  );
  const retryable = { true: 'yes', false: 'no', varies: 'yes or no' } as const;
  const limit = (e: ErrorCodeEntry): string =>
    e.retryable === false
      ? 'none (fails at once)'
      : e.maxRetries !== undefined
        ? `${e.maxRetries} (its own)`
        : `policy (default ${defaultMax})${e.retryable === 'varies' ? ' when retryable' : ''}`;
  const meaning = (c: string, e: ErrorCodeEntry): string =>
    inputs.has(c) ? `${e.meaning} (${inputs.get(c)!.join(', ')})` : e.meaning;
  return [
    '### Error codes',
    '',
    `Every code the services raise (\`ERROR_CODES\` in packages/errors/src/codes.ts); in parentheses, the inputs \`classifyError\` maps to it. "retryable": "yes or no" means the place that raises it decides (its meaning says when). "retry limit": an error's own limit wins; otherwise the row's \`max_retries\`, else \`recovery.operationTypes.<type>.maxRetries\`, else \`recovery.defaultMaxRetries\` (${defaultMax}). Stalls count toward the same limit.`,
    '',
    table(
      ['code', 'class', 'retryable', 'retry limit', 'meaning'],
      rows.map(([c, e]) => [
        code(c),
        e.class === undefined ? '—' : code(e.class),
        retryable[String(e.retryable) as keyof typeof retryable],
        limit(e),
        escapeCell(meaning(c, e)),
      ]),
    ),
    '',
    '### What to do, by error code',
    '',
    'The advice a permanent-failure notification carries in its "To do" line (the `advice` of `ERROR_CODES`), followed there by the `ccat-recovery retry` command line. Every other code gets the generic advice:',
    '',
    `> ${adviceFor('\u0000')}`,
    '',
    table(
      ['code', 'what to do'],
      rows.flatMap(([c, e]) => (e.advice === undefined ? [] : [[code(c), escapeCell(e.advice)]])),
    ),
    '',
  ].join('\n');
}
