// docs/configuration.md: every option of the worker and the monitor-runner, from their zod schemas
// through `z.toJSONSchema` (input side): structure, types, defaults, constraints and each option's
// description (its `.describe()` / `.meta()` metadata). Variable names come from `envVarName`, the
// naming rule of the config loader itself, so a name shown here is one that works.
import { readFile } from 'node:fs/promises';
import { OPERATION_TYPES } from '@ccat/db';
import { envVarName } from '@ccat/service';
import { MONITOR_ENV_ALIASES, MONITOR_SECRET_FILES, monitorConfigSchema } from '@ccat/monitor-runner';
import { ENV_ALIASES, WORKER_SECRET_FILES, workerConfigSchema } from '@ccat/worker';
import { z } from 'zod';
import { code, escapeCell, table } from './markdown.js';

/** The JSON Schema subset `z.toJSONSchema` produces for these configs. */
type Json = Readonly<
  Partial<Record<'type' | 'description' | 'pattern' | 'format', string>> &
    Partial<Record<'minimum' | 'maximum' | 'minLength' | 'maxLength' | 'minItems' | 'maxItems', number>> & {
      properties?: Readonly<Record<string, Json>>;
      additionalProperties?: Json | boolean;
      required?: readonly string[];
      propertyNames?: Json;
      items?: Json;
      anyOf?: readonly Json[];
      oneOf?: readonly Json[];
      enum?: readonly unknown[];
      const?: unknown;
      default?: unknown;
    }
>;

/** One app whose configuration is documented. */
export interface AppConfig {
  readonly title: string;
  readonly command: string;
  readonly schema: z.ZodType;
  /** Well-known variables → the option path they set (the app's loader's `aliases`). */
  readonly aliases: Readonly<Record<string, string>>;
  /** Aliases that may also name a file holding the secret (`NAME_FILE`, the app's `secretFiles`). */
  readonly secretFiles: readonly string[];
}

/** The apps documented, in the order of the reference. */
const APPS: readonly AppConfig[] = [
  {
    title: 'Worker (`ccat-worker`, apps/worker)',
    command: 'ccat-worker',
    schema: workerConfigSchema,
    aliases: ENV_ALIASES,
    secretFiles: WORKER_SECRET_FILES,
  },
  {
    title: 'Monitor (`ccat-monitor` and the `ccat-recovery` CLI, apps/monitor-runner)',
    command: 'ccat-monitor',
    schema: monitorConfigSchema,
    aliases: MONITOR_ENV_ALIASES,
    secretFiles: MONITOR_SECRET_FILES,
  },
];

/** One option: a path segment is a key, `[]` (an array's items) or `*` (a map's values). */
interface Row {
  readonly path: readonly string[];
  type: string;
  readonly dflt: string;
  constraints: string[];
  description: string | undefined;
  /** Objects, maps and arrays of objects: their fields follow as rows of their own. */
  container: boolean;
}

const toJson = (schema: z.ZodType): Json =>
  z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
const members = (n: Json): readonly Json[] | undefined => n.anyOf ?? n.oneOf;
const isObject = (n: Json): boolean =>
  n.type === 'object' && (n.properties !== undefined || typeof n.additionalProperties === 'object');
const isOperationTypes = (list: readonly unknown[]): boolean =>
  list.length === OPERATION_TYPES.length && OPERATION_TYPES.every((t) => list.includes(t));
const literal = (v: unknown): string =>
  Array.isArray(v) && v.length > 1 && isOperationTypes(v) ? 'every operation type' : code(JSON.stringify(v));
const PLURALS: Readonly<Record<string, string>> = {
  object: 'objects',
  string: 'strings',
  integer: 'integers',
  'email address': 'email addresses',
  'operation type': 'operation types',
};
const plural = (t: string): string => PLURALS[t] ?? (t.startsWith('one of ') ? t.slice(7) : t);

function typeOf(n: Json): string {
  const list = members(n);
  if (list !== undefined) {
    const nonNull = list.filter((m) => m.type !== 'null');
    const names = [...new Set(nonNull.map(typeOf))].join(' or ');
    return names + (nonNull.length < list.length ? ' or `null`' : '');
  }
  if (n.const !== undefined) return literal(n.const);
  if (n.enum !== undefined)
    return isOperationTypes(n.enum) ? 'operation type' : `one of ${n.enum.map(literal).join(', ')}`;
  if (n.type === 'string' && n.format === 'email') return 'email address';
  if (n.type === 'string' && (n.format === 'uri' || n.format === 'url')) return 'URL';
  if (n.type === 'null') return '`null`';
  if (n.type === 'array') return n.items === undefined ? 'array' : `array of ${plural(typeOf(n.items))}`;
  if (n.type === 'object' && n.properties === undefined && typeof n.additionalProperties === 'object')
    return `map of ${plural(typeOf(n.additionalProperties))}`;
  return n.type ?? 'any';
}

function constraintsOf(n: Json): string[] {
  const out: string[] = [];
  const low = n.minimum !== undefined && n.minimum > -Number.MAX_SAFE_INTEGER ? n.minimum : undefined;
  const high = n.maximum !== undefined && n.maximum < Number.MAX_SAFE_INTEGER ? n.maximum : undefined;
  if (low !== undefined && high !== undefined) out.push(`${low} to ${high}`);
  else if (low !== undefined) out.push(`≥ ${low}`);
  else if (high !== undefined) out.push(`≤ ${high}`);
  const { minLength: minL, maxLength: maxL, minItems, maxItems } = n;
  if (minL !== undefined && maxL !== undefined) out.push(`${minL} to ${maxL} characters`);
  else if (minL === 1) out.push('non-empty');
  else if (minL !== undefined && minL > 1) out.push(`at least ${minL} characters`);
  else if (maxL !== undefined) out.push(`at most ${maxL} characters`);
  // A format (email, URL) says it better than the pattern zod derives from it.
  if (n.pattern !== undefined && n.format === undefined) out.push(`matches ${code(n.pattern)}`);
  if (minItems === 1) out.push('non-empty');
  else if (minItems !== undefined && minItems > 1) out.push(`at least ${minItems} items`);
  if (maxItems !== undefined) out.push(`at most ${maxItems} items`);
  if (n.items !== undefined && !isObject(n.items)) {
    const inner = constraintsOf(n.items);
    if (inner.length > 0) out.push(`each: ${inner.join(', ')}`);
  }
  const keys = n.propertyNames?.enum;
  if (keys !== undefined)
    out.push(
      `keys: ${isOperationTypes(keys) ? 'operation types' : keys.map((k) => code(String(k))).join(', ')}`,
    );
  return out;
}

/** The fields an object, a map, an array of objects or a union of them holds, with their paths. */
function children(n: Json, path: readonly string[]): { node: Json; path: string[]; required: boolean }[] {
  const list = members(n);
  if (list !== undefined) return list.flatMap((m) => (isObject(m) || m.items ? children(m, path) : []));
  if (n.type === 'array')
    return n.items !== undefined && isObject(n.items) ? children(n.items, [...path, '[]']) : [];
  if (!isObject(n)) return [];
  const out = Object.entries(n.properties ?? {}).map(([name, node]) => ({
    node,
    path: [...path, name],
    required: n.required?.includes(name) ?? false,
  }));
  if (typeof n.additionalProperties === 'object')
    out.push({ node: n.additionalProperties, path: [...path, '*'], required: false });
  return out;
}

/** Every option of a schema, in schema order; a field of several union members gets one row. */
function optionRows(schema: z.ZodType): Row[] {
  const rows = new Map<string, Row>();
  const visit = (node: Json, path: string[], required: boolean): void => {
    const key = path.join('.');
    const known = rows.get(key);
    const inner = children(node, path);
    if (known === undefined) {
      const dflt = node.default !== undefined ? literal(node.default) : required ? 'required' : '—';
      const row = { path, type: typeOf(node), dflt, constraints: constraintsOf(node) };
      rows.set(key, { ...row, description: node.description, container: inner.length > 0 });
    } else {
      // A field of several union members (`transport.kind`): each member's type and text counts.
      if (known.type !== typeOf(node)) known.type = `${known.type} or ${typeOf(node)}`;
      known.constraints = [...new Set([...known.constraints, ...constraintsOf(node)])];
      if (node.description !== undefined && !(known.description ?? '').includes(node.description))
        known.description =
          known.description === undefined ? node.description : `${known.description} ${node.description}`;
    }
    for (const c of inner) visit(c.node, c.path, c.required);
  };
  for (const c of children(toJson(schema), [])) visit(c.node, c.path, c.required);
  // A map's entry object adds nothing to the map's own row; its fields follow.
  return [...rows.values()].filter(
    (r) => !(r.path.at(-1) === '*' && r.container && r.description === undefined),
  );
}

/** `a.[].b.*.c` → `a[].b.<key>.c`. */
const displayPath = (path: readonly string[]): string =>
  path
    .map((s) => (s === '*' ? '<key>' : s))
    .join('.')
    .replaceAll('.[]', '[]');

/**
 * The variables that set an option: its aliases (with `NAME_FILE` for a secret), and the generic
 * `CCAT_…` name when `envVarName` has one for this very path; otherwise the nearest enclosing
 * object's variable, which takes JSON.
 */
function envFor(path: readonly string[], app: AppConfig): string[] {
  const out: string[] = [];
  for (const [name, target] of Object.entries(app.aliases)) {
    if (target !== path.join('.')) continue;
    out.push(code(name));
    if (app.secretFiles.includes(name)) out.push(`${code(`${name}_FILE`)} (a file holding the secret)`);
  }
  const cut = path.findIndex((s) => s === '[]' || s === '*');
  const own = cut === -1 ? path : path.slice(0, cut);
  for (let n = own.length; n > 0; n--) {
    const name = envVarName(own.slice(0, n));
    if (name !== undefined) return [...out, n === path.length ? code(name) : `${code(name)} (JSON)`];
  }
  return out;
}

/**
 * One app's part of the reference: a table of its top-level options, then one per object section.
 * Throws, naming every such path, when an option (not an object holding others) has no description.
 */
export function renderApp(app: AppConfig): string {
  const rows = optionRows(app.schema);
  const missing = rows.filter((r) => !r.container && r.description === undefined);
  if (missing.length > 0)
    throw new Error(
      `${app.command}: options without a description (add .describe('…') to their schema): ${missing.map((r) => displayPath(r.path)).join(', ')}`,
    );
  const render = (list: readonly Row[]) =>
    table(
      ['option', 'type', 'default', 'constraints', 'environment', 'description'],
      list.map((r) =>
        [
          code(displayPath(r.path)),
          r.type,
          r.dflt,
          r.constraints.join('; '),
          envFor(r.path, app).join(', '),
          r.description ?? '',
        ].map((cell, i) => (i === 0 ? cell : escapeCell(cell))),
      ),
    );
  const isSection = (r: Row) => r.path.length === 1 && r.container && r.type === 'object';
  const sections = rows.filter(isSection);
  const top = rows.filter((r) => !sections.some((s) => s.path[0] === r.path[0]));
  const lines = [`## ${app.title}`, '', render(top), ''];
  for (const section of sections) {
    const name = section.path[0]!;
    lines.push(`### \`${name}\``, '', ...(section.description ? [section.description, ''] : []));
    lines.push(render(rows.filter((r) => r.path[0] === name && r.path.length > 1)), '');
  }
  return lines.join('\n');
}

/** Object paths whose unknown keys are dropped rather than refused (not strict). */
function lenientObjects(n: Json, path: readonly string[]): string[] {
  const here = n.type === 'object' && n.properties !== undefined && n.additionalProperties !== false;
  const nested = [
    ...Object.entries(n.properties ?? {}).map(([k, c]) => lenientObjects(c, [...path, k])),
    typeof n.additionalProperties === 'object' ? lenientObjects(n.additionalProperties, [...path, '*']) : [],
    n.items !== undefined ? lenientObjects(n.items, [...path, '[]']) : [],
    ...(members(n) ?? []).map((m) => lenientObjects(m, path)),
  ];
  return [...(here ? [displayPath(path)] : []), ...nested.flat()];
}

/**
 * The whole of docs/configuration.md (before prettier): configuration-intro.md with its
 * placeholders filled, then each app's options. Throws when an option has no description, or when
 * an object is not strict (the introduction says every one is).
 */
export async function renderConfigurationReference(): Promise<string> {
  const lenient = [...new Set(APPS.flatMap((app) => lenientObjects(toJson(app.schema), [])))];
  if (lenient.length > 0)
    throw new Error(`config objects that drop unknown keys (make them strict): ${lenient.join(', ')}`);
  const aliases = APPS.map((app) => {
    const names = Object.entries(app.aliases).map(([name, target]) => `${code(name)} → ${code(target)}`);
    return `     - ${code(app.command)}: ${names.join(', ')}`;
  });
  const fill: Readonly<Record<string, string>> = {
    aliases: aliases.join('\n'),
    secrets: APPS.flatMap((a) => a.secretFiles.map((n) => `${code(`${n}_FILE`)} (${code(a.command)})`)).join(
      ', ',
    ),
    operationTypes: OPERATION_TYPES.map(code).join(', '),
  };
  const intro = await readFile(new URL('../configuration-intro.md', import.meta.url), 'utf8');
  return [
    intro.replace(/\{\{(\w+)\}\}/g, (_, k: string) => fill[k]!).trimEnd(),
    '',
    ...APPS.map(renderApp),
  ].join('\n');
}
