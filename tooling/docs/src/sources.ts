// Over 300 lines: the docs generator is to be rebuilt on zod metadata (issue 14); not split before that.
// Reads the workspace's TypeScript sources with the compiler API, for what the runtime objects do not
// carry: the `/** … */` comments on schema fields and error classes, the classifier's rule tables,
// union types. Imports of workspace packages are resolved to their `src/` (not `dist/*.d.ts`, which
// drop the comments); third-party modules are not loaded at all, so a program is small and fast.
import { existsSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import ts from 'typescript';

export interface Sources {
  readonly program: ts.Program;
  readonly checker: ts.TypeChecker;
  /** The repository root, for relative file names in messages. */
  readonly root: string;
}

const require = createRequire(import.meta.url);

/** The directory of a workspace package this package depends on (`@ccat/worker` → apps/worker). */
export function packageDir(name: string): string {
  return dirname(realpathSync(require.resolve(`${name}/package.json`)));
}

/** The TypeScript source of a workspace file `…/dist/x.d.ts` or `…/src/x.ts`; undefined for anything else. */
function workspaceSource(file: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(file);
  } catch {
    return undefined;
  }
  if (real.split(sep).includes('node_modules')) return undefined;
  const dist = /^(.*)[/\\]dist[/\\](.*)\.d\.ts$/.exec(real);
  if (dist !== null) {
    const src = join(dist[1]!, 'src', `${dist[2]!}.ts`);
    return existsSync(src) ? src : undefined;
  }
  return real.endsWith('.ts') && !real.endsWith('.d.ts') ? real : undefined;
}

/** A program over the sources reachable from `entries` (workspace files only). */
export function loadSources(entries: readonly string[], root: string): Sources {
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2023,
    noEmit: true,
    noLib: true,
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options, true);
  host.resolveModuleNameLiterals = (literals, containingFile, redirected, opts, containingSourceFile) =>
    literals.map((literal) => {
      const mode = ts.getModeForUsageLocation(containingSourceFile, literal, opts);
      const found = ts.resolveModuleName(
        literal.text,
        containingFile,
        opts,
        host,
        undefined,
        redirected,
        mode,
      );
      const file = found.resolvedModule && workspaceSource(found.resolvedModule.resolvedFileName);
      return file === undefined
        ? { resolvedModule: undefined }
        : {
            resolvedModule: {
              resolvedFileName: file,
              extension: ts.Extension.Ts,
              isExternalLibraryImport: false,
            },
          };
    });
  const program = ts.createProgram({ rootNames: [...entries], options, host });
  return { program, checker: program.getTypeChecker(), root };
}

/** A package's source entry point (`src/index.ts`, the source of its `dist/index.d.ts`). */
export function sourceEntry(name: string): string {
  const file = join(packageDir(name), 'src', 'index.ts');
  if (!existsSync(file)) throw new Error(`${name}: no src/index.ts at ${file}`);
  return file;
}

export function sourceFile(s: Sources, file: string): ts.SourceFile {
  const sf = s.program.getSourceFile(file);
  if (sf === undefined) throw new Error(`not in the program: ${file}`);
  return sf;
}

/** Follows import/export aliases to the symbol's own declaration. */
function declarationOf(s: Sources, symbol: ts.Symbol): ts.Declaration | undefined {
  const target = symbol.flags & ts.SymbolFlags.Alias ? s.checker.getAliasedSymbol(symbol) : symbol;
  return target.valueDeclaration ?? target.declarations?.[0];
}

/** The declaration of `name` as exported by the module `file`. */
export function exportedDeclaration(s: Sources, file: string, name: string): ts.Declaration {
  const moduleSymbol = s.checker.getSymbolAtLocation(sourceFile(s, file));
  const symbol = moduleSymbol && s.checker.getExportsOfModule(moduleSymbol).find((e) => e.name === name);
  const decl = symbol && declarationOf(s, symbol);
  if (decl === undefined) throw new Error(`${relative(s.root, file)} does not export ${name}`);
  return decl;
}

/** The file a module specifier resolves to from `fromFile` (workspace sources only). */
export function resolveModule(s: Sources, fromFile: string, specifier: string): string {
  const sf = sourceFile(s, fromFile);
  for (const statement of sf.statements) {
    if (
      (ts.isImportDeclaration(statement) || ts.isExportDeclaration(statement)) &&
      statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier) &&
      statement.moduleSpecifier.text === specifier
    ) {
      const symbol = s.checker.getSymbolAtLocation(statement.moduleSpecifier);
      const decl = symbol?.valueDeclaration ?? symbol?.declarations?.[0];
      if (decl !== undefined && ts.isSourceFile(decl)) return decl.fileName;
    }
  }
  throw new Error(`${relative(s.root, fromFile)} does not import ${specifier} from a workspace source`);
}

/** The text of a node's JSDoc comments, on one line (tags left out). */
export function jsDocText(node: ts.Node): string | undefined {
  const parts = ts
    .getJSDocCommentsAndTags(node)
    .filter(ts.isJSDoc)
    .map((d) => ts.getTextOfJSDocComment(d.comment) ?? '')
    .filter((t) => t.trim() !== '');
  if (parts.length === 0) {
    // TypeScript attaches JSDoc only to a comment that starts its line; `{ /** doc */ key: … }` counts too.
    const sf = node.getSourceFile();
    const full = sf.getFullText();
    const at = node.getFullStart();
    // On the line of the previous token, TypeScript calls them that token's trailing comments.
    const ranges = [
      ...(ts.getTrailingCommentRanges(full, at) ?? []),
      ...(ts.getLeadingCommentRanges(full, at) ?? []),
    ];
    for (const r of ranges)
      if (full.startsWith('/**', r.pos) && r.end - r.pos > 4)
        parts.push(full.slice(r.pos + 3, r.end - 2).replace(/^\s*\*/gm, ''));
  }
  const text = parts.join(' ').replace(/\s+/g, ' ').trim();
  return text === '' ? undefined : text;
}

/** Where a node is, as `path/to/file.ts:line`. */
export function locationOf(s: Sources, node: ts.Node): string {
  const sf = node.getSourceFile();
  const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  return `${relative(s.root, sf.fileName).split(sep).join('/')}:${line + 1}`;
}

function skipOuter(e: ts.Expression): ts.Expression {
  let x = e;
  while (
    ts.isParenthesizedExpression(x) ||
    ts.isAsExpression(x) ||
    ts.isSatisfiesExpression(x) ||
    ts.isNonNullExpression(x)
  )
    x = x.expression;
  return x;
}

/** An identifier's value: the initializer of the variable it names (through imports). */
function valueOf(s: Sources, id: ts.Identifier): ts.Expression | undefined {
  const symbol = s.checker.getSymbolAtLocation(id);
  const decl = symbol && declarationOf(s, symbol);
  return decl !== undefined && ts.isVariableDeclaration(decl) ? decl.initializer : undefined;
}

/** The expression a variable declaration exports (for `export const x = …`). */
export function initializerOf(decl: ts.Declaration): ts.Expression {
  if (ts.isVariableDeclaration(decl) && decl.initializer !== undefined) return decl.initializer;
  throw new Error(`not a variable with a value: ${decl.getText().slice(0, 80)}`);
}

// ---------------------------------------------------------------------------------------------------
// Schema comments

/** One path segment: a property name, `[]` for array items, `*` for record values. */
export type Segment = string;

export const pathKey = (path: readonly Segment[]): string => path.join('.');

export interface SchemaSourceDocs {
  /** Path key → the field's `/** … *\/` text. */
  readonly descriptions: Map<string, string>;
  /** Path key → where the field is declared (for "add a comment here" messages). */
  readonly locations: Map<string, string>;
  /** Path key → messages of `.refine` / `.superRefine` rules about that field. */
  readonly rules: Map<string, string[]>;
}

const ZOD_OBJECTS = new Set(['object', 'strictObject', 'looseObject']);
const ZOD_RECORDS = new Set(['record', 'partialRecord', 'looseRecord']);

function literalText(e: ts.Expression | undefined): string | undefined {
  if (e === undefined) return undefined;
  const x = skipOuter(e);
  if (ts.isStringLiteral(x) || ts.isNoSubstitutionTemplateLiteral(x)) return x.text;
  if (ts.isTemplateExpression(x))
    return x.head.text + x.templateSpans.map((span) => `…${span.literal.text}`).join('');
  return undefined;
}

/** The message of a check's options: `'text'`, `{ message: 'text' }` or `{ error: 'text' }`. */
function messageOf(e: ts.Expression | undefined): string | undefined {
  if (e === undefined) return undefined;
  const x = skipOuter(e);
  if (ts.isObjectLiteralExpression(x)) {
    for (const p of x.properties)
      if (ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && ['message', 'error'].includes(p.name.text))
        return literalText(p.initializer);
    return undefined;
  }
  return literalText(x);
}

/**
 * Walks a zod schema expression as written (`z.strictObject({ … })`, `.default()`, `.prefault()`,
 * helpers, variables and imports) and collects each field's comment, keyed by its path.
 */
export function schemaSourceDocs(s: Sources, expression: ts.Expression): SchemaSourceDocs {
  const out: SchemaSourceDocs = { descriptions: new Map(), locations: new Map(), rules: new Map() };
  const rule = (path: readonly Segment[], text: string | undefined) => {
    if (text === undefined) return;
    const key = pathKey(path);
    const list = out.rules.get(key) ?? [];
    if (!list.includes(text)) list.push(text);
    out.rules.set(key, list);
  };

  const objectLiteral = (e: ts.Expression, path: readonly Segment[], seen: Set<ts.Node>): void => {
    let x = skipOuter(e);
    if (ts.isIdentifier(x)) {
      const v = valueOf(s, x);
      if (v === undefined) return;
      x = skipOuter(v);
    }
    if (!ts.isObjectLiteralExpression(x)) return;
    for (const p of x.properties) {
      if (ts.isSpreadAssignment(p)) {
        objectLiteral(p.expression, path, seen);
        continue;
      }
      if (!ts.isPropertyAssignment(p) && !ts.isShorthandPropertyAssignment(p)) continue;
      const name = ts.isIdentifier(p.name) || ts.isStringLiteral(p.name) ? p.name.text : undefined;
      if (name === undefined) continue;
      const here = [...path, name];
      const key = pathKey(here);
      const doc = jsDocText(p);
      // A field in several members of a union (`transport.kind`): each member's comment counts.
      const known = out.descriptions.get(key);
      if (doc !== undefined && known === undefined) out.descriptions.set(key, doc);
      else if (doc !== undefined && known !== undefined && !known.includes(doc))
        out.descriptions.set(key, `${known} ${doc}`);
      if (!out.locations.has(key)) out.locations.set(key, locationOf(s, p));
      walk(ts.isPropertyAssignment(p) ? p.initializer : p.name, here, seen);
    }
  };

  const superRefine = (fn: ts.Expression | undefined, path: readonly Segment[]): void => {
    if (fn === undefined) return;
    const visit = (node: ts.Node): void => {
      if (
        ts.isCallExpression(node) &&
        ts.isPropertyAccessExpression(node.expression) &&
        node.expression.name.text === 'addIssue'
      ) {
        const arg = node.arguments[0];
        if (arg !== undefined && ts.isObjectLiteralExpression(arg)) {
          let issuePath: Segment[] = [];
          for (const p of arg.properties) {
            if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name) || p.name.text !== 'path') continue;
            const list = skipOuter(p.initializer);
            if (ts.isArrayLiteralExpression(list))
              issuePath = list.elements.map((el) => literalText(el) ?? '[]');
          }
          rule([...path, ...issuePath], messageOf(arg));
        }
      }
      ts.forEachChild(node, visit);
    };
    visit(fn);
  };

  const walk = (e: ts.Expression, path: readonly Segment[], seen: Set<ts.Node>): void => {
    const x = skipOuter(e);
    if (seen.has(x)) return;
    const next = new Set(seen).add(x);
    if (ts.isIdentifier(x)) {
      const v = valueOf(s, x);
      if (v !== undefined) walk(v, path, next);
      return;
    }
    if (!ts.isCallExpression(x) || !ts.isPropertyAccessExpression(x.expression)) return;
    const method = x.expression.name.text;
    const receiver = skipOuter(x.expression.expression);
    const args = x.arguments;
    if (ts.isIdentifier(receiver) && receiver.text === 'z') {
      if (ZOD_OBJECTS.has(method) && args[0] !== undefined) objectLiteral(args[0], path, next);
      else if (method === 'array' && args[0] !== undefined) walk(args[0], [...path, '[]'], next);
      else if (ZOD_RECORDS.has(method) && args[1] !== undefined) walk(args[1], [...path, '*'], next);
      else if (method === 'union' || method === 'discriminatedUnion') {
        const list = args[method === 'union' ? 0 : 1];
        if (list !== undefined && ts.isArrayLiteralExpression(list))
          for (const member of list.elements) walk(member, path, next);
      }
      return;
    }
    if (method === 'refine') rule(path, messageOf(args[1]));
    if (method === 'superRefine') superRefine(args[0], path);
    walk(receiver, path, next);
  };

  walk(expression, [], new Set());
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Other facts from the sources

/** Keys of a top-level `const NAME = { … }` object literal, or elements of `new Set([…])`, in a file. */
export function constantKeys(s: Sources, file: string, name: string): string[] {
  const sf = sourceFile(s, file);
  for (const statement of sf.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const d of statement.declarationList.declarations) {
      if (!ts.isIdentifier(d.name) || d.name.text !== name || d.initializer === undefined) continue;
      const init = skipOuter(d.initializer);
      if (ts.isObjectLiteralExpression(init))
        return init.properties.flatMap((p) =>
          ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))
            ? [p.name.text]
            : [],
        );
      if (ts.isNewExpression(init) && init.arguments?.[0] !== undefined) {
        const list = skipOuter(init.arguments[0]);
        if (ts.isArrayLiteralExpression(list)) return list.elements.flatMap((el) => literalText(el) ?? []);
      }
    }
  }
  throw new Error(`${relative(s.root, file)}: no top-level constant ${name}`);
}

/** The first sentence of the JSDoc on an exported class, by class name, for every class in `file`. */
export function classDocs(s: Sources, file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const statement of sourceFile(s, file).statements) {
    if (ts.isClassDeclaration(statement) && statement.name !== undefined) {
      const doc = jsDocText(statement);
      if (doc !== undefined) out.set(statement.name.text, doc);
    }
  }
  return out;
}

/** Literal error facts written in a source: `new Cls(msg, { code: 'A', retryable: false })` or `{ code: 'A', … }`. */
export interface ThrowSite {
  /** The class constructed, when the literal is a `new X(msg, { … })` option object. */
  readonly className?: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly maxRetries?: number;
  readonly location: string;
}

const ERROR_CODE = /^[A-Z][A-Z0-9_]+$/;

/**
 * Every object literal in a workspace `src/` file that sets an error code (`code: 'UPPER_CASE'`), and
 * every `new X(msg, { … })` whose options set `code`, `retryable` or `maxRetries` literally.
 */
export function throwSites(s: Sources): ThrowSite[] {
  const out: ThrowSite[] = [];
  for (const sf of s.program.getSourceFiles()) {
    if (!/[/\\]src[/\\]/.test(sf.fileName) || sf.isDeclarationFile) continue;
    const visit = (node: ts.Node): void => {
      if (ts.isObjectLiteralExpression(node)) {
        const parent = node.parent;
        const className =
          ts.isNewExpression(parent) && ts.isIdentifier(parent.expression) && parent.arguments?.[1] === node
            ? parent.expression.text
            : undefined;
        const site: { -readonly [K in keyof ThrowSite]: ThrowSite[K] } = { location: locationOf(s, node) };
        if (className !== undefined) site.className = className;
        for (const p of node.properties) {
          if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) continue;
          const v = skipOuter(p.initializer);
          if (p.name.text === 'code' && ts.isStringLiteral(v) && ERROR_CODE.test(v.text)) site.code = v.text;
          if (p.name.text === 'retryable' && v.kind === ts.SyntaxKind.TrueKeyword) site.retryable = true;
          if (p.name.text === 'retryable' && v.kind === ts.SyntaxKind.FalseKeyword) site.retryable = false;
          if (p.name.text === 'maxRetries' && ts.isNumericLiteral(v)) site.maxRetries = Number(v.text);
        }
        const relevant =
          site.code !== undefined ||
          (className !== undefined && (site.retryable !== undefined || site.maxRetries !== undefined));
        if (relevant) out.push(site);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return out;
}
