// Configuration is input like any other: layered from defaults, a JSON file and the environment
// (DESIGN §8: later wins), validated once, and refused with one readable line per problem.
import {
  ConfigurationError,
  describeConfigValue,
  describeThrown as describe,
  redactSecrets,
  safeGet,
  safeString,
  truncate,
} from '@ccat/errors';

/** The subset of a zod schema this needs (any zod 3/4 schema fits). */
export interface SafeParseSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: unknown };
}

export interface ConfigSources {
  /** The parsed JSON config file (`--config` / `CCAT_CONFIG`), if any. */
  readonly file?: unknown;
  /** Where the file came from, for messages. */
  readonly fileName?: string;
  /** The environment (`process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /**
   * Generic variables: `${prefix}SECTION__KEY_NAME=value` sets `section.keyName`. Values are parsed
   * as JSON when they parse (numbers, booleans, arrays), else taken as strings. Default `CCAT_`.
   */
  readonly envPrefix?: string;
  /** Well-known variables mapped to a dotted path, e.g. `{ DATABASE_URL: 'database.url' }`. */
  readonly aliases?: Readonly<Record<string, string>>;
  /** Variables under the prefix that are not configuration (e.g. `CCAT_CONFIG`). */
  readonly ignore?: readonly string[];
}

type Tree = Record<string, unknown>;

const isTree = (v: unknown): v is Tree => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Deep merge of plain objects; arrays and scalars from `over` replace. */
export function mergeConfig(base: unknown, over: unknown): unknown {
  if (!isTree(base) || !isTree(over)) return over === undefined ? base : over;
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) out[k] = mergeConfig(base[k], v);
  return out;
}

const camel = (s: string) => s.toLowerCase().replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());

/**
 * The option path a generic variable sets: `CCAT_SECTION__KEY_NAME` → `['section', 'keyName']` (a
 * double underscore between levels; single underscores inside a name, which becomes camelCase).
 * Undefined for a name without the prefix or with nothing after it.
 */
export function envVarPath(name: string, prefix = 'CCAT_'): string[] | undefined {
  if (!name.startsWith(prefix)) return undefined;
  const path = name.slice(prefix.length).split('__').filter(Boolean).map(camel);
  return path.length > 0 ? path : undefined;
}

/**
 * The generic variable that sets the option at `path` (`['section', 'keyName']` →
 * `CCAT_SECTION__KEY_NAME`), checked by reading it back with `envVarPath`. Undefined when no name
 * maps back to that path (`requireTLS`, whose capitals do not survive; a key with underscores of
 * its own): such an option is set through its enclosing object's variable, as JSON.
 */
export function envVarName(path: readonly string[], prefix = 'CCAT_'): string | undefined {
  const snake = (key: string) => key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
  const name = prefix + path.map(snake).join('__');
  return envVarPath(name, prefix)?.join('.') === path.join('.') ? name : undefined;
}

function setPath(tree: Tree, path: readonly string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (!isTree(node[key])) node[key] = {};
    node = node[key] as Tree;
  }
  node[path.at(-1)!] = value;
}

function envValue(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** The configuration tree the environment describes. */
export function configFromEnv(sources: ConfigSources): Tree {
  return envTree(sources).tree;
}

/** The tree, and which variable set each dotted path (for messages). */
function envTree(sources: ConfigSources): { tree: Tree; origins: Map<string, string> } {
  const origins = new Map<string, string>();
  const env = sources.env ?? {};
  const prefix = sources.envPrefix ?? 'CCAT_';
  const ignore = new Set(sources.ignore ?? []);
  const tree: Tree = {};
  for (const [name, raw] of Object.entries(env)) {
    if (raw === undefined || ignore.has(name)) continue;
    const path = envVarPath(name, prefix);
    if (path !== undefined) {
      setPath(tree, path, envValue(raw));
      origins.set(path.join('.'), name);
    }
  }
  for (const [name, path] of Object.entries(sources.aliases ?? {})) {
    const raw = env[name];
    if (raw !== undefined) {
      setPath(tree, path.split('.'), raw);
      origins.set(path, name);
    }
  }
  return { tree, origins };
}

function valueAt(input: unknown, path: readonly unknown[]): unknown {
  let node = input;
  for (const key of path) node = safeGet(node, String(key));
  return node;
}

/**
 * One line per zod issue: `path: message (expected …), got <value>` (the value looked up in `input`
 * when the issue lacks it), naming the environment variable it came from. The value is shown by
 * `describeConfigValue`: never a secret-named key's value, never a whole object; an unknown key's
 * line names the key and nothing of its parent.
 */
export function formatConfigIssues(
  error: unknown,
  input?: unknown,
  origins?: ReadonlyMap<string, string>,
): string[] {
  const issues = safeGet(error, 'issues');
  if (!Array.isArray(issues)) return [truncate(redactSecrets(describe(error, 2000)), 500)];
  return issues.slice(0, 50).map((issue: unknown) => {
    const path = safeGet(issue, 'path');
    const pathKeys = Array.isArray(path) ? path.map((p) => String(p)) : [];
    const where = pathKeys.length > 0 ? pathKeys.join('.') : '(root)';
    const message = truncate(redactSecrets(safeString(issue, 'message') ?? 'invalid'), 300);
    const expected = safeString(issue, 'expected');
    const keys = safeGet(issue, 'keys');
    const unknownKeys = Array.isArray(keys);
    const own = safeGet(issue, 'input');
    const value = own !== undefined ? own : pathKeys.length > 0 ? valueAt(input, pathKeys) : undefined;
    // An unknown key's issue carries its parent object: the key is named in the message already.
    const got = unknownKeys
      ? undefined
      : value === undefined
        ? expected !== undefined
          ? 'nothing'
          : undefined
        : describeConfigValue(value, pathKeys);
    // Name the variable a value (or an unknown key) came from: a stray CCAT_… variable is otherwise hard to find.
    const candidates = unknownKeys
      ? keys.map((k) => [...pathKeys, String(k)].join('.'))
      : [pathKeys.join('.')];
    const vars = [...(origins ?? new Map<string, string>())]
      .filter(([p]) => candidates.some((c) => p === c || p.startsWith(`${c}.`) || c.startsWith(`${p}.`)))
      .map(([, v]) => v);
    const from = vars.length > 0 ? ` (from ${vars.slice(0, 3).join(', ')})` : '';
    return `${where}: ${message}${expected !== undefined && !message.includes(expected) ? ` (expected ${expected})` : ''}${got !== undefined ? `, got ${got}` : ''}${from}`;
  });
}

/**
 * Defaults (the schema's) → file → environment, validated by `schema`; the result is frozen. Throws
 * ConfigurationError whose message has one line per problem.
 */
export function resolveConfig<T>(schema: SafeParseSchema<T>, sources: ConfigSources = {}): Readonly<T> {
  const fromEnv = envTree(sources);
  const merged = mergeConfig(mergeConfig({}, sources.file ?? {}), fromEnv.tree);
  const result = schema.safeParse(merged);
  if (!result.success) {
    const lines = formatConfigIssues(result.error, merged, fromEnv.origins);
    throw new ConfigurationError(
      `invalid configuration${sources.fileName ? ` (file ${sources.fileName} and environment)` : ''}:\n  ${lines.join('\n  ')}`,
      // No `cause`: the validator's error holds the raw input, secrets included, and a logger
      // that prints causes would print them. The lines say everything the cause did.
      { context: { problems: lines } },
    );
  }
  return deepFreeze(result.data);
}

function deepFreeze<T>(value: T): Readonly<T> {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
