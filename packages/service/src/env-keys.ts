// Which `CCAT_…` variables are this program's configuration and which belong to someone else
// (DESIGN §8): Kubernetes service links and another app's keys in a shared env file are not ours and
// must not stop a process; a misspelt key of our own still must.

/**
 * What a variable under the prefix is to one program: `ours` (its configuration, validated: a
 * misspelt key fails naming it), `foreign` (a key this program does not have and that is not close
 * to one it has: another app's, ignored) or `service-link` (the shape of a variable Kubernetes
 * injects for a Service, ignored).
 */
export type EnvVariableKind = 'ours' | 'foreign' | 'service-link';

/** What the configuration sources left unread, by variable name (never a value). */
export interface IgnoredVariables {
  /** Variables under the prefix naming a key this program does not have and no misspelling of one. */
  readonly foreign: readonly string[];
  /** Kubernetes service-link variables (`<SERVICE>_SERVICE_HOST`, `<SERVICE>_PORT_9464_TCP…`). */
  readonly serviceLinks: readonly string[];
}

/**
 * The variables Kubernetes sets for every Service in the namespace unless the pod says
 * `enableServiceLinks: false` (Kubernetes docs, "Discovering services: environment variables", and
 * Docker's legacy container links it mimics): `{SVC}_SERVICE_HOST`, `{SVC}_SERVICE_PORT`,
 * `{SVC}_SERVICE_PORT_{NAME}`, `{SVC}_PORT`, `{SVC}_PORT_{N}_{PROTO}` and its `_PROTO`, `_PORT`,
 * `_ADDR`. Ours never look like this: our nesting is `__`, and no top-level key ends in Port or
 * ServiceHost.
 */
const SERVICE_LINK =
  /^[A-Z0-9_]+?_(?:SERVICE_HOST|SERVICE_PORT(?:_[A-Z0-9_]+)?|PORT(?:_\d+_(?:TCP|UDP|SCTP)(?:_(?:PROTO|PORT|ADDR))?)?)$/;

/** Whether `name` (with or without our prefix) has the shape of a Kubernetes service-link variable. */
export function isServiceLinkVariable(name: string): boolean {
  return !name.includes('__') && SERVICE_LINK.test(name);
}

/**
 * Optimal string alignment distance (Damerau–Levenshtein without repeated edits of one substring):
 * insertions, deletions, substitutions and transpositions of neighbours each cost 1, so `prot` is 1
 * from `port`. O(|a|·|b|).
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * Whether `key` reads as a misspelling of one of `known`: the same letters ignoring case, or within
 * 1 edit of a key of up to 4 letters, 2 of a longer one (the usual typo bound of "did you mean"
 * suggestions; `relay` and `redis`, 3 apart, stay apart).
 */
export function isNearKey(key: string, known: Iterable<string>): boolean {
  const k = key.toLowerCase();
  for (const candidate of known) {
    const c = candidate.toLowerCase();
    if (editDistance(k, c) <= (c.length <= 4 ? 1 : 2)) return true;
  }
  return false;
}

/** The parts of a zod 4 schema's definition this reads (`schema._zod.def`). */
interface ZodDefLike {
  readonly type?: unknown;
  readonly shape?: unknown;
  readonly innerType?: unknown;
  readonly in?: unknown;
}

function defOf(schema: unknown): ZodDefLike | undefined {
  const zod = (schema as { _zod?: { def?: unknown } } | null)?._zod;
  const def = zod?.def;
  return typeof def === 'object' && def !== null ? def : undefined;
}

/**
 * The object schema under wrappers (default, prefault, optional, nullable, readonly, catch, a pipe's
 * input) and its keys' schemas, or undefined when `schema` is not an object (a record, a union, a
 * scalar) or not a zod 4 schema: there nothing can be judged and every variable counts as ours.
 */
function objectShape(schema: unknown): Readonly<Record<string, unknown>> | undefined {
  let def = defOf(schema);
  for (let depth = 0; def !== undefined && depth < 20; depth++) {
    if (def.type === 'object') {
      const shape = def.shape;
      return typeof shape === 'object' && shape !== null ? (shape as Record<string, unknown>) : undefined;
    }
    const inner = def.type === 'pipe' ? def.in : def.innerType;
    def = inner === undefined ? undefined : defOf(inner);
  }
  return undefined;
}

/**
 * What the variable `name`, read as the dotted `path` (camel-cased keys), is to the program whose
 * configuration `schema` describes. Walks the schema's objects along the path: a key the object has
 * is followed; a key it lacks is `ours` when near one it has (a typo: validation then fails naming
 * the variable) and `foreign` otherwise. A path that leaves the objects (into a record, a union, a
 * scalar) is `ours`, validated as usual. A service-link-shaped name whose first key the program
 * lacks is `service-link`.
 */
export function classifyEnvVariable(schema: unknown, name: string, path: readonly string[]): EnvVariableKind {
  let shape = objectShape(schema);
  for (const [i, key] of path.entries()) {
    if (shape === undefined) return 'ours';
    if (Object.hasOwn(shape, key)) {
      shape = objectShape(shape[key]);
      continue;
    }
    if (i === 0 && isServiceLinkVariable(name)) return 'service-link';
    return isNearKey(key, Object.keys(shape)) ? 'ours' : 'foreign';
  }
  return 'ours';
}

/**
 * Every dotted key path of a zod 4 object schema, objects followed through their wrappers: a key
 * whose schema is an object contributes its own path and its keys' paths. Records, unions and
 * arrays are leaves. Empty for a schema that is not a zod 4 object.
 */
export function schemaKeyPaths(schema: unknown): string[][] {
  const out: string[][] = [];
  const walk = (node: unknown, path: string[]) => {
    const shape = objectShape(node);
    if (shape === undefined) return;
    for (const [key, child] of Object.entries(shape)) {
      out.push([...path, key]);
      walk(child, [...path, key]);
    }
  };
  walk(schema, []);
  return out;
}
