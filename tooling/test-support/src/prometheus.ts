// The shipped Prometheus rules and Grafana dashboard, read for tests; and a PromQL name extractor.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const RULES_FILE = fileURLToPath(
  new URL('../../../deploy/prometheus/ccat-rules.yaml', import.meta.url),
);
export const RULE_TESTS_DIR = fileURLToPath(new URL('../../../deploy/prometheus/tests/', import.meta.url));
const DASHBOARD_FILE = fileURLToPath(new URL('../../../deploy/grafana/ccat-recovery.json', import.meta.url));

export interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

/** The alert rules of the shipped rules file, in order. */
export function shippedRules(): { text: string; rules: AlertRule[] } {
  const text = readFileSync(RULES_FILE, 'utf8');
  const doc = parse(text) as { groups: { rules: AlertRule[] }[] };
  return { text, rules: doc.groups.flatMap((g) => g.rules) };
}

/** Every PromQL expression of the shipped dashboard's panels. */
export function dashboardExpressions(): string[] {
  const doc = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as {
    panels: { title: string; targets?: { expr?: string }[] }[];
  };
  return doc.panels.flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr === undefined ? [] : [t.expr])));
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  'offset',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not function calls, keywords,
 * label names (inside `{…}` or `by (…)`), durations, numbers or strings. Good enough for the
 * expressions we ship (no subqueries with `@`, no metric names in `{__name__=…}` matchers).
 */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\$__\w+/g, '');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const word = m[0];
    const after = stripped.slice((m.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(') || KEYWORDS.has(word.toLowerCase())) continue;
    // A number's exponent (1e-9) is not a name.
    const before = stripped[(m.index ?? 0) - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue;
    names.add(word);
  }
  return [...names];
}
