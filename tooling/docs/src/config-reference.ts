// docs/configuration.md: every option of the worker and the monitor-runner, from their zod schemas.
// Structure, types, defaults and constraints come from the schema itself (`z.toJSONSchema`, input
// side); descriptions and cross-field rules from the schema's source (see sources.ts); environment
// variable names from the same `configFromEnv` the apps use, so a name shown here is one that works.
import { OPERATION_TYPES } from '@ccat/db';
import { configFromEnv } from '@ccat/service';
import { MONITOR_ENV_ALIASES, MONITOR_SECRET_FILES, monitorConfigSchema } from '@ccat/monitor-runner';
import { ENV_ALIASES, WORKER_SECRET_FILES, workerConfigSchema } from '@ccat/worker';
import { z } from 'zod';
import { code, escapeCell, table } from './markdown.js';
import {
  exportedDeclaration,
  initializerOf,
  pathKey,
  schemaSourceDocs,
  sourceEntry,
  type SchemaSourceDocs,
  type Segment,
  type Sources,
} from './sources.js';

/** The JSON Schema subset `z.toJSONSchema` produces for these configs. */
interface Json {
  readonly type?: string | readonly string[];
  readonly properties?: Readonly<Record<string, Json>>;
  readonly required?: readonly string[];
  readonly additionalProperties?: Json | boolean;
  readonly propertyNames?: Json;
  readonly items?: Json;
  readonly anyOf?: readonly Json[];
  readonly oneOf?: readonly Json[];
  readonly enum?: readonly unknown[];
  readonly const?: unknown;
  readonly default?: unknown;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly exclusiveMinimum?: number;
  readonly exclusiveMaximum?: number;
  readonly minLength?: number;
  readonly maxLength?: number;
  readonly minItems?: number;
  readonly maxItems?: number;
  readonly pattern?: string;
  readonly format?: string;
}

export interface OptionRow {
  readonly path: readonly Segment[];
  readonly type: string;
  /** Rendered default, or `required` / `—`. */
  readonly dflt: string;
  readonly constraints: readonly string[];
  readonly description: string | undefined;
  readonly env: readonly string[];
  /** Objects, records and arrays of objects: their fields follow as rows of their own. */
  readonly container: boolean;
}

export interface AppConfig {
  readonly title: string;
  readonly command: string;
  readonly packageName: string;
  readonly exportName: string;
  readonly schema: z.ZodType;
  readonly aliases: Readonly<Record<string, string>>;
  /** Environment variables read by main.ts besides the schema's (documented by hand there). */
  readonly notes: readonly string[];
}

/** The note on an app's `NAME_FILE` secrets, from the list the app itself reads. */
function secretFilesNote(who: string, names: readonly string[]): string {
  const files = names.map((n) => code(`${n}_FILE`)).join(', ');
  return `${files} (read by ${who} at start): a file holding the secret (a mounted Docker or Kubernetes Secret), used when the variable itself is not set.`;
}

export const APPS: readonly AppConfig[] = [
  {
    title: 'Worker (`ccat-worker`, apps/worker)',
    command: 'ccat-worker',
    packageName: '@ccat/worker',
    exportName: 'workerConfigSchema',
    schema: workerConfigSchema,
    aliases: ENV_ALIASES,
    notes: [secretFilesNote('ccat-worker', WORKER_SECRET_FILES)],
  },
  {
    title: 'Monitor (`ccat-monitor` and the `ccat-recovery` CLI, apps/monitor-runner)',
    command: 'ccat-monitor',
    packageName: '@ccat/monitor-runner',
    exportName: 'monitorConfigSchema',
    schema: monitorConfigSchema,
    aliases: MONITOR_ENV_ALIASES,
    notes: [secretFilesNote('ccat-monitor and the ccat-recovery CLI', MONITOR_SECRET_FILES)],
  },
];

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

const isObjectNode = (n: Json): boolean =>
  n.type === 'object' && (n.properties !== undefined || typeof n.additionalProperties === 'object');

const isOperationTypes = (list: readonly unknown[]): boolean =>
  list.length === OPERATION_TYPES.length && OPERATION_TYPES.every((t) => list.includes(t));

function literal(v: unknown): string {
  if (Array.isArray(v) && v.length > 1 && isOperationTypes(v)) return 'every operation type';
  return code(JSON.stringify(v));
}

function typeOf(n: Json): string {
  const members = n.anyOf ?? n.oneOf;
  if (members !== undefined) {
    const nonNull = members.filter((m) => m.type !== 'null');
    const parts = nonNull.map(typeOf);
    const unique = [...new Set(parts)];
    return unique.join(' or ') + (nonNull.length < members.length ? ' or `null`' : '');
  }
  if (n.const !== undefined) return literal(n.const);
  if (n.enum !== undefined)
    return isOperationTypes(n.enum) ? 'operation type' : `one of ${n.enum.map(literal).join(', ')}`;
  const format =
    n.format === 'email' ? 'email address' : n.format === 'uri' || n.format === 'url' ? 'URL' : undefined;
  switch (n.type) {
    case 'integer':
      return 'integer';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'string':
      return format ?? 'string';
    case 'null':
      return '`null`';
    case 'array':
      return n.items === undefined ? 'array' : `array of ${plural(typeOf(n.items))}`;
    case 'object':
      if (n.properties !== undefined) return 'object';
      if (typeof n.additionalProperties === 'object')
        return `map of ${plural(typeOf(n.additionalProperties))}`;
      return 'object';
    default:
      return 'any';
  }
}

function plural(t: string): string {
  if (t === 'object') return 'objects';
  if (t === 'string') return 'strings';
  if (t === 'integer') return 'integers';
  if (t === 'email address') return 'email addresses';
  if (t === 'operation type') return 'operation types';
  if (t.startsWith('one of ')) return t.slice('one of '.length);
  return t;
}

function constraintsOf(n: Json): string[] {
  const out: string[] = [];
  const min = n.minimum ?? (n.exclusiveMinimum === undefined ? undefined : n.exclusiveMinimum);
  const max = n.maximum !== undefined && n.maximum < MAX_SAFE ? n.maximum : undefined;
  const low = min !== undefined && min > -MAX_SAFE ? min : undefined;
  if (low !== undefined && max !== undefined) out.push(`${low} to ${max}`);
  else if (low !== undefined) out.push(`≥ ${low}`);
  else if (max !== undefined) out.push(`≤ ${max}`);
  if (n.minLength !== undefined && n.maxLength !== undefined)
    out.push(`${n.minLength} to ${n.maxLength} characters`);
  else if (n.minLength === 1) out.push('non-empty');
  else if (n.minLength !== undefined && n.minLength > 1) out.push(`at least ${n.minLength} characters`);
  else if (n.maxLength !== undefined) out.push(`at most ${n.maxLength} characters`);
  // A format (email, URL) says it better than the pattern zod derives from it.
  if (n.pattern !== undefined && n.format === undefined) out.push(`matches ${code(n.pattern)}`);
  if (n.minItems === 1) out.push('non-empty');
  else if (n.minItems !== undefined && n.minItems > 1) out.push(`at least ${n.minItems} items`);
  if (n.maxItems !== undefined) out.push(`at most ${n.maxItems} items`);
  if (n.items !== undefined && !isObjectNode(n.items)) {
    const inner = constraintsOf(n.items);
    if (inner.length > 0) out.push(`each: ${inner.join(', ')}`);
  }
  if (n.propertyNames?.enum !== undefined)
    out.push(
      isOperationTypes(n.propertyNames.enum)
        ? 'keys: operation types'
        : `keys: ${n.propertyNames.enum.map((k) => code(String(k))).join(', ')}`,
    );
  return out;
}

function defaultOf(n: Json, required: boolean): string {
  if (n.default !== undefined) return literal(n.default);
  return required ? 'required' : '—';
}

const upperSnake = (segment: string): string => segment.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

function valueAt(tree: unknown, path: readonly string[]): unknown {
  let node = tree;
  for (const key of path)
    node = typeof node === 'object' && node !== null ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/**
 * The variables that set an option: its aliases, and the generic `CCAT_SECTION__KEY` name when
 * `configFromEnv` maps that name back to this very path; otherwise the nearest enclosing object's
 * variable, which takes JSON.
 */
function envFor(path: readonly Segment[], aliases: Readonly<Record<string, string>>): string[] {
  const out = Object.entries(aliases)
    .filter(([, target]) => target === path.join('.'))
    .map(([name]) => code(name));
  const cut = path.findIndex((s) => s === '[]' || s === '*');
  const own = cut === -1 ? path : path.slice(0, cut);
  for (let n = own.length; n > 0; n--) {
    const prefix = own.slice(0, n);
    const name = `CCAT_${prefix.map(upperSnake).join('__')}`;
    const probe = '"ccat-docs-probe"';
    if (valueAt(configFromEnv({ env: { [name]: probe } }), prefix) !== 'ccat-docs-probe') continue;
    if (n === path.length) out.push(code(name));
    else out.push(`${code(name)} (JSON)`);
    break;
  }
  return out;
}

function collect(
  n: Json,
  path: readonly Segment[],
  required: boolean,
  aliases: Readonly<Record<string, string>>,
  rows: Map<string, OptionRow>,
): void {
  const key = pathKey(path);
  if (path.length > 0) {
    const row: OptionRow = {
      path,
      type: typeOf(n),
      dflt: defaultOf(n, required),
      constraints: constraintsOf(n),
      description: undefined,
      env: envFor(path, aliases),
      container: false,
    };
    const previous = rows.get(key);
    rows.set(
      key,
      previous === undefined
        ? row
        : {
            ...previous,
            type: previous.type === row.type ? row.type : `${previous.type} or ${row.type}`,
            constraints: [...new Set([...previous.constraints, ...row.constraints])],
          },
    );
  }
  const children: { node: Json; path: Segment[]; required: boolean }[] = [];
  const members = n.anyOf ?? n.oneOf;
  if (members !== undefined) {
    for (const m of members) {
      if (isObjectNode(m)) collectChildren(m, path, children);
      else if (m.type === 'array' && m.items !== undefined && isObjectNode(m.items))
        collectChildren(m.items, [...path, '[]'], children);
    }
  } else if (n.type === 'array' && n.items !== undefined && isObjectNode(n.items)) {
    collectChildren(n.items, [...path, '[]'], children);
  } else if (isObjectNode(n)) {
    collectChildren(n, path, children);
  }
  if (children.length > 0 && path.length > 0) rows.set(key, { ...rows.get(key)!, container: true });
  for (const c of children) collect(c.node, c.path, c.required, aliases, rows);
}

function collectChildren(
  n: Json,
  path: readonly Segment[],
  out: { node: Json; path: Segment[]; required: boolean }[],
): void {
  for (const [name, child] of Object.entries(n.properties ?? {}))
    out.push({ node: child, path: [...path, name], required: n.required?.includes(name) ?? false });
  if (typeof n.additionalProperties === 'object')
    out.push({ node: n.additionalProperties, path: [...path, '*'], required: false });
}

/** Every option of one app's schema, with its description from the source. */
export function optionRows(
  app: AppConfig,
  docs: SchemaSourceDocs,
): { rows: OptionRow[]; sections: Map<string, string | undefined> } {
  const json = z.toJSONSchema(app.schema, { io: 'input', unrepresentable: 'any' }) as Json;
  const rows = new Map<string, OptionRow>();
  collect(json, [], true, app.aliases, rows);
  // A rule about an array item or a map entry belongs to the array's or the map's row.
  const rulesAt = new Map<string, string[]>();
  for (const [key, messages] of docs.rules) {
    const path = key.split('.');
    while (path.length > 0 && !rows.has(pathKey(path))) path.pop();
    const at = pathKey(path);
    rulesAt.set(at, [...(rulesAt.get(at) ?? []), ...messages]);
  }
  const sections = new Map<string, string | undefined>();
  const out: OptionRow[] = [];
  for (const row of rows.values()) {
    const key = pathKey(row.path);
    // A map's entry object adds nothing to the map's own row; its fields follow.
    if (row.path.at(-1) === '*' && row.container && !docs.descriptions.has(key)) continue;
    const description = docs.descriptions.get(key);
    const rules = rulesAt.get(key) ?? [];
    const full: OptionRow = {
      ...row,
      description,
      constraints: [...row.constraints, ...rules],
    };
    if (row.path.length === 1 && row.container && row.type === 'object') sections.set(key, description);
    out.push(full);
  }
  return { rows: out, sections };
}

/** Options without a description: the generator refuses to write a reference with holes. */
export function missingDescriptions(
  app: AppConfig,
  rows: readonly OptionRow[],
  docs: SchemaSourceDocs,
): string[] {
  return rows
    .filter((r) => !r.container && r.description === undefined)
    .map((r) => {
      const where = docs.locations.get(pathKey(r.path));
      return `${app.exportName}: ${displayPath(r.path)} has no description; add a /** … */ comment above it${where === undefined ? '' : ` (${where})`}`;
    });
}

export function displayPath(path: readonly Segment[]): string {
  let out = '';
  for (const s of path) {
    if (s === '[]') out += '[]';
    else if (s === '*') out += out === '' ? '<key>' : '.<key>';
    else out += out === '' ? s : `.${s}`;
  }
  return out;
}

export function schemaDocsFor(s: Sources, app: AppConfig): SchemaSourceDocs {
  return schemaSourceDocs(
    s,
    initializerOf(exportedDeclaration(s, sourceEntry(app.packageName), app.exportName)),
  );
}

function renderApp(app: AppConfig, docs: SchemaSourceDocs): string {
  const { rows, sections } = optionRows(app, docs);
  const lines: string[] = [`## ${app.title}`, ''];
  const top = rows.filter((r) => r.path.length === 1 && !sections.has(pathKey(r.path)));
  const renderRows = (list: readonly OptionRow[]) =>
    table(
      ['option', 'type', 'default', 'constraints', 'environment', 'description'],
      list.map((r) => [
        code(displayPath(r.path)),
        escapeCell(r.type),
        escapeCell(r.dflt),
        escapeCell(r.constraints.join('; ')),
        escapeCell(r.env.join(', ')),
        escapeCell(r.description ?? ''),
      ]),
    );
  if (top.length > 0) lines.push(renderRows(top), '');
  for (const [section, description] of sections) {
    lines.push(`### \`${section}\``, '');
    if (description !== undefined) lines.push(description, '');
    const list = rows.filter((r) => r.path[0] === section && r.path.length > 1);
    lines.push(renderRows(list), '');
  }
  return lines.join('\n');
}

/** Object paths whose unknown keys are dropped rather than refused (not strict). */
function lenientObjects(n: Json, path: readonly Segment[], out: string[]): void {
  if (n.type === 'object' && n.properties !== undefined && n.additionalProperties !== false)
    out.push(displayPath(path));
  for (const [name, child] of Object.entries(n.properties ?? {})) lenientObjects(child, [...path, name], out);
  if (typeof n.additionalProperties === 'object') lenientObjects(n.additionalProperties, [...path, '*'], out);
  if (n.items !== undefined) lenientObjects(n.items, [...path, '[]'], out);
  for (const m of n.anyOf ?? n.oneOf ?? []) lenientObjects(m, path, out);
}

function intro(): string {
  const aliasLines = APPS.map(
    (app) =>
      `${code(app.command)}: ${Object.entries(app.aliases)
        .map(([name, target]) => `${code(name)} → ${code(target)}`)
        .join(', ')}`,
  );
  const lenient = new Set<string>();
  for (const app of APPS) {
    const found: string[] = [];
    lenientObjects(z.toJSONSchema(app.schema, { io: 'input', unrepresentable: 'any' }) as Json, [], found);
    found.forEach((p) => lenient.add(p));
  }
  const strictness =
    lenient.size === 0
      ? "Unknown keys are refused everywhere (the objects are strict), so a typo is an error, not a silently ignored setting. In the environment, a `CCAT_…` variable naming a key the app does not have and is not one or two edits from one it has (another app's key in a shared env file, a Kubernetes service link such as `CCAT_MONITOR_SERVICE_HOST`) is ignored, with one warning naming it; a near miss (`CCAT_CONCURENCY`) is refused."
      : `Unknown keys are refused (the objects are strict), so a typo is an error, not a silently ignored setting; except inside ${[...lenient].map(code).join(', ')}, where unknown keys are dropped without a word.`;
  return `# Configuration reference

<!-- Generated by tooling/docs (pnpm docs:generate) from the zod schemas and their comments. Do not edit by hand: change the schema, then regenerate. -->

Both apps read their configuration once, at start. Sources, later ones winning:

1. the defaults below (the schema's);
2. a JSON file: \`--config file.json\`, or the file the \`CCAT_CONFIG\` environment variable names;
3. environment variables:
   - \`CCAT_<SECTION>__<KEY_NAME>=value\` sets \`section.keyName\`: a double underscore between levels, single underscores inside a name, which becomes camelCase. The value is parsed as JSON when it parses (numbers, booleans, arrays, objects), else taken as a string, so a string option that looks like a number must be quoted: \`CCAT_WORKER_ID='"42"'\`.
   - An option whose name does not survive that round trip (\`requireTLS\`; the per-operation-type maps, whose keys contain underscores; array items) is set through the enclosing object's variable, as JSON; the tables name that variable. Objects merge with the file's, so \`CCAT_HEARTBEAT__OPERATION_TYPES='{"data_transfer":{"timeoutMs":600000}}'\` sets only that entry.
   - Well-known names, applied after the generic variables and taken as plain strings:
${aliasLines.map((l) => `     - ${l}`).join('\n')}

An invalid configuration stops the process at start with one line per problem: the path, what was expected, what was given. ${strictness}

The \`ccat-recovery\` admin CLI reads the monitor's configuration (the same file and variables). Durations are in milliseconds. The operation types are ${OPERATION_TYPES.map(code).join(', ')}; \`<key>\` in a path stands for one of them.`;
}

export function renderConfigurationReference(s: Sources): string {
  const parts: string[] = [intro(), ''];
  for (const app of APPS) {
    const docs = schemaDocsFor(s, app);
    const { rows } = optionRows(app, docs);
    const missing = missingDescriptions(app, rows, docs);
    if (missing.length > 0) throw new Error(`cannot document every option:\n  ${missing.join('\n  ')}`);
    parts.push(renderApp(app, docs));
    if (app.notes.length > 0)
      parts.push(`Also read by ${code(app.command)}:`, '', ...app.notes.map((n) => `- ${n}`), '');
  }
  return parts.join('\n');
}
