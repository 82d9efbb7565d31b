#!/usr/bin/env node
// Run from a package or app directory. Fails (exit 1) with one line per problem when:
//  - package.json breaks the house shape (name, type, exports, sideEffects, files);
//  - a symbol exported from a file under src/ is not exported from src/index.ts (libraries only;
//    src/internal/** and the bin entry points are exempt);
//  - runtime imports between src/ files form a cycle.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

const root = process.cwd();
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const problems = [];
const isApp = relative(join(root, '..'), root) !== '' && root.split('/').at(-2) === 'apps';

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (/\.ts$/.test(name) && !/\.d\.ts$/.test(name)) out.push(p);
  }
  return out;
}

// 1. package.json shape
if (!/^@ccat\/[a-z0-9-]+$/.test(pkg.name ?? ''))
  problems.push(`package.json: name "${pkg.name}" is not @ccat/<kebab-name>`);
if (pkg.type !== 'module') problems.push('package.json: "type" must be "module"');
if (!isApp) {
  const exp = pkg.exports ?? {};
  if (!exp['.']) problems.push('package.json: exports must have a "." entry');
  for (const key of Object.keys(exp)) {
    if (
      !['.', './package.json'].includes(key) &&
      exp[key] !== null &&
      !(pkg.ccat?.subpaths ?? []).includes(key)
    ) {
      problems.push(
        `package.json: export "${key}" is a subpath; list it under ccat.subpaths if it is on purpose`,
      );
    }
  }
  if (pkg.sideEffects !== false) problems.push('package.json: "sideEffects" must be false');
  if (JSON.stringify(pkg.files) !== JSON.stringify(['dist']))
    problems.push('package.json: "files" must be ["dist"]');
}

// 2 and 3 need the program.
const srcDir = join(root, 'src');
const files = walk(srcDir);
const options = {
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
  target: ts.ScriptTarget.ES2023,
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  types: ['node'],
};
const program = ts.createProgram(files, options);
const checker = program.getTypeChecker();
const rel = (f) => relative(root, f);

function moduleExports(file) {
  const sf = program.getSourceFile(file);
  const sym = sf && checker.getSymbolAtLocation(sf);
  if (!sym) return [];
  return checker.getExportsOfModule(sym).map((s) => ({
    name: s.getName(),
    target: s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s,
  }));
}

// Bins and deliberate subpath entries (package.json "ccat.subpaths") are entry points of their own.
const bins = new Set(['main.ts', 'cli.ts']);
for (const sub of pkg.ccat?.subpaths ?? []) {
  const target = pkg.exports?.[sub];
  const js = typeof target === 'string' ? target : (target?.import ?? target?.default);
  if (typeof js === 'string') bins.add(js.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts'));
}
if (!isApp) {
  const index = join(srcDir, 'index.ts');
  const publicTargets = new Set(moduleExports(index).map((e) => e.target));
  for (const f of files) {
    const r = relative(srcDir, f);
    if (f === index || r.startsWith('internal/') || bins.has(r)) continue;
    for (const e of moduleExports(f)) {
      if (!publicTargets.has(e.target))
        problems.push(`${rel(f)}: exports "${e.name}", which src/index.ts does not export`);
    }
  }
}

// Runtime import graph (type-only imports cannot form a runtime cycle).
const graph = new Map();
for (const f of files) {
  const sf = program.getSourceFile(f);
  const deps = [];
  for (const st of sf.statements) {
    const isImport = ts.isImportDeclaration(st) && !st.importClause?.isTypeOnly;
    const isReexport = ts.isExportDeclaration(st) && !st.isTypeOnly && st.moduleSpecifier;
    if (!isImport && !isReexport) continue;
    const spec = st.moduleSpecifier.text;
    if (!spec.startsWith('.')) continue;
    const res = ts.resolveModuleName(spec, f, options, ts.sys).resolvedModule;
    if (res && !res.isExternalLibraryImport) deps.push(resolve(res.resolvedFileName));
  }
  graph.set(resolve(f), deps);
}
// Tarjan's strongly connected components.
let index = 0;
const stack = [];
const meta = new Map();
function strong(v) {
  meta.set(v, { index, low: index, on: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!meta.has(w)) {
      strong(w);
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
    } else if (meta.get(w).on) meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
  }
  if (meta.get(v).low === meta.get(v).index) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).on = false;
      comp.push(w);
    } while (w !== v);
    const selfLoop = comp.length === 1 && (graph.get(v) ?? []).includes(v);
    if (comp.length > 1 || selfLoop) problems.push(`import cycle: ${comp.map(rel).join(' -> ')}`);
  }
}
for (const v of graph.keys()) if (!meta.has(v)) strong(v);

if (problems.length > 0) {
  for (const p of problems) console.error(`${pkg.name}: ${p}`);
  process.exit(1);
}
console.log(`${pkg.name}: package shape, public entry point and import graph OK (${files.length} files)`);
