// The runbook's error-code part: every code an operation can fail with (the error classes' own,
// what `classifyError` makes of each input its rules name, codes set where errors are thrown) and
// the advice per code from `ERROR_ADVICE`, the one catalogue of operator text (@ccat/errors).
import {
  adviceFor,
  builtinErrorClasses,
  CLASSIFIER_RULE_KEYS,
  classifyError,
  ERROR_ADVICE,
} from '@ccat/errors';
import { recoveryPolicySchema } from '@ccat/recovery-handlers';
import { code, escapeCell, table } from './markdown.js';
import { errorClassSummaries, throwSites } from './sources.js';

/** One way a code comes about: a class's default, a classifier rule, or a throw in a file. */
interface Variant {
  readonly className: string | undefined;
  readonly retryable: boolean | undefined;
  readonly maxRetries: number | undefined;
  readonly when: string;
}

/** What `classifyError` makes of a probe built from each key its rule tables name. */
function classifierVariants(): { code: string; variant: Variant }[] {
  const { errno, sqlstate, sqlstateClass, redisReply } = CLASSIFIER_RULE_KEYS;
  const pg = (state: string) => ({ code: state, severity: 'ERROR' });
  const classFree = (k: string) => [`${k}000`, `${k}999`].find((c) => !sqlstate.includes(c))!;
  const cases: [Record<string, unknown>, string][] = [
    ...errno.map((k): [Record<string, unknown>, string] => [{ code: k }, `errno ${code(k)}`]),
    ...sqlstate.map((k): [Record<string, unknown>, string] => [pg(k), `SQLSTATE ${code(k)}`]),
    ...sqlstateClass.map((k): [Record<string, unknown>, string] => [
      pg(classFree(k)),
      `SQLSTATE class ${code(`${k}…`)}`,
    ]),
    [pg('ZZ999'), 'any other SQLSTATE'],
    ...redisReply.map((w): [Record<string, unknown>, string] => [
      { name: 'ReplyError', message: `${w} probe` },
      `Redis reply ${code(w)}`,
    ]),
  ];
  return cases.map(([fields, when]) => {
    const e = classifyError(Object.assign(new Error('probe'), fields));
    return {
      code: e.code,
      variant: { className: e.name, retryable: e.retryable, maxRetries: e.maxRetries, when },
    };
  });
}

const uniq = (list: readonly string[]): string[] => [...new Set(list)];

/** The error-code sections of the runbook (Markdown, before prettier). */
export async function renderErrorCodes(): Promise<string> {
  const defaultMax = recoveryPolicySchema.parse({}).defaultMaxRetries;
  const summaries = await errorClassSummaries();
  const classes = new Map(builtinErrorClasses.map((c) => [c.name, c]));
  const byCode = new Map<string, Variant[]>();
  const add = (c: string, v: Variant) => byCode.set(c, [...(byCode.get(c) ?? []), v]);
  for (const cls of builtinErrorClasses) {
    const { name, defaultCode, defaultRetryable: retryable, defaultMaxRetries: maxRetries } = cls;
    add(defaultCode, { className: name, retryable, maxRetries, when: summaries.get(name) ?? code(name) });
  }
  for (const { code: c, variant } of classifierVariants()) add(c, variant);
  // Only a code of its own, or a retryability or limit its class does not have, is worth a mention.
  const sites = new Map<string, { v: Omit<Variant, 'when'>; files: string[] }>();
  for (const site of await throwSites()) {
    const cls = site.className === undefined ? undefined : classes.get(site.className);
    if (site.className !== undefined && cls === undefined) continue; // not an operation's error
    const c = site.code ?? cls?.defaultCode;
    const v = {
      className: site.className,
      retryable: site.retryable ?? cls?.defaultRetryable,
      maxRetries: site.maxRetries ?? cls?.defaultMaxRetries,
    };
    if (
      c === undefined ||
      (cls?.defaultCode === c &&
        cls.defaultRetryable === v.retryable &&
        cls.defaultMaxRetries === v.maxRetries)
    )
      continue;
    const key = `${c}|${v.className}|${v.retryable}|${v.maxRetries}`;
    sites.set(key, { v, files: [...(sites.get(key)?.files ?? []), site.file] });
  }
  const bases = new Map([...byCode].map(([c, list]) => [c, list[0]]));
  for (const [key, { v, files }] of sites) {
    const c = key.split('|')[0]!;
    const base = bases.get(c);
    const how = [
      base === undefined || v.className !== base.className
        ? v.className
          ? `thrown as ${code(v.className)}`
          : 'written'
        : 'thrown',
    ];
    if (base !== undefined && v.retryable !== undefined && v.retryable !== base.retryable)
      how.push(v.retryable ? 'retryable' : 'not retryable');
    if (base !== undefined && v.maxRetries !== undefined && v.maxRetries !== base.maxRetries)
      how.push(`with limit ${v.maxRetries}`);
    add(c, { ...v, when: `${how.join(' ')} in ${compactFiles(files)}` });
  }
  const unknown = { className: undefined, retryable: undefined, maxRetries: undefined };
  for (const c of Object.keys(ERROR_ADVICE))
    if (!byCode.has(c)) add(c, { ...unknown, when: 'named in `ERROR_ADVICE`' });

  const limit = (v: Variant): string =>
    v.retryable === undefined
      ? '—'
      : !v.retryable
        ? 'none (fails at once)'
        : v.maxRetries !== undefined
          ? `${v.maxRetries} (its own)`
          : `policy (default ${defaultMax})`;
  const codes = [...byCode.keys()].sort();
  const rows = codes.map((c) => {
    const variants = byCode.get(c)!;
    const retryable = uniq(
      variants.flatMap((v) => (v.retryable === undefined ? [] : [v.retryable ? 'yes' : 'no'])),
    );
    const limits = uniq(variants.map(limit));
    const known = limits.filter((l) => l !== '—');
    return [
      code(c),
      uniq(variants.flatMap((v) => (v.className === undefined ? [] : [code(v.className)]))).join(', ') || '—',
      retryable.join(' or ') || '—',
      (known.length > 0 ? known : limits).join(' or '),
      escapeCell(uniq(variants.map((v) => v.when)).join('; ')),
    ];
  });
  const advice = codes.flatMap((c) => (c in ERROR_ADVICE ? [[code(c), escapeCell(adviceFor(c))]] : []));
  return [
    '### Error codes',
    '',
    `Every code an operation can fail with: the error classes' own codes, the codes \`classifyError\` gives to what third-party code throws, and codes set where errors are thrown ("raised" names the files). "retryable" is the class's default, or what a throw sets. "retry limit": an error's own limit wins; otherwise the row's \`max_retries\`, else \`recovery.operationTypes.<type>.maxRetries\`, else \`recovery.defaultMaxRetries\` (${defaultMax}). Stalls count toward the same limit.`,
    '',
    table(['code', 'class', 'retryable', 'retry limit', 'raised'], rows),
    '',
    '### What to do, by error code',
    '',
    'The advice a permanent-failure notification carries in its "To do" line (`ERROR_ADVICE` in packages/errors/src/catalogue.ts), followed there by the `ccat-recovery retry` command line. Every other code gets the generic advice:',
    '',
    `> ${adviceFor('\u0000')}`,
    '',
    table(['code', 'what to do'], advice),
    '',
  ].join('\n');
}

/** `a/b/x.ts`, `a/b/y.ts` → `a/b/{x,y}.ts`. */
function compactFiles(files: readonly string[]): string {
  const byDir = new Map<string, string[]>();
  for (const f of uniq(files).sort()) {
    const i = f.lastIndexOf('/');
    byDir.set(f.slice(0, i), [...(byDir.get(f.slice(0, i)) ?? []), f.slice(i + 1, -3)]);
  }
  const one = ([dir, names]: [string, string[]]) =>
    `${dir}/${names.length === 1 ? names[0]! : `{${names.join(',')}}`}.ts`;
  return [...byDir].map((entry) => code(one(entry))).join(', ');
}
