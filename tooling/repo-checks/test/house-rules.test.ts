// Issue 14's "Done when", checked on every run rather than once at its close: no source file passes
// 300 lines without a one-line reason at its top (STYLE), no app imports another app and no package
// imports an app, and a package depends only on the packages DESIGN §2's direction allows. An adversary found four files past 300 lines without a reason after
// later merges; a rule nobody runs drifts.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Every .ts file under `dir` (relative to the root), skipping node_modules and dist. */
async function tsFiles(dir: string): Promise<string[]> {
  const entries = await readdir(join(ROOT, dir), { withFileTypes: true }).catch(() => []);
  const out: string[] = [];
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const path = `${dir}/${e.name}`;
    if (e.isDirectory()) out.push(...(await tsFiles(path)));
    else if (e.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/** The `src` folders of every workspace package and app, and bench's. */
async function sourceDirs(): Promise<string[]> {
  const dirs = ['bench/src'];
  for (const group of ['packages', 'apps', 'tooling']) {
    for (const entry of await readdir(join(ROOT, group))) dirs.push(`${group}/${entry}/src`);
  }
  return dirs;
}

/** The package names of the apps (apps/*), from their manifests. */
async function appNames(): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  for (const entry of await readdir(join(ROOT, 'apps'))) {
    const text = await readFile(join(ROOT, 'apps', entry, 'package.json'), 'utf8').catch(() => undefined);
    if (text !== undefined) names.set((JSON.parse(text) as { name: string }).name, `apps/${entry}`);
  }
  return names;
}

/**
 * DESIGN §2's dependency direction: the workspace packages each package (packages/*) may depend on
 * and import. `errors` ← `db` ← `recovery-handlers`; `heartbeat`, `notifier` and `service` → `errors`.
 */
const ALLOWED_PACKAGE_EDGES: Readonly<Record<string, readonly string[]>> = {
  '@ccat/errors': [],
  '@ccat/db': ['@ccat/errors'],
  '@ccat/recovery-handlers': ['@ccat/db', '@ccat/errors'],
  '@ccat/heartbeat': ['@ccat/errors'],
  '@ccat/notifier': ['@ccat/errors'],
  '@ccat/service': ['@ccat/errors'],
};

interface Manifest {
  readonly name: string;
  readonly dependencies?: Readonly<Record<string, string>>;
  readonly peerDependencies?: Readonly<Record<string, string>>;
  readonly optionalDependencies?: Readonly<Record<string, string>>;
}

/** The manifests of the packages (packages/*), by folder. */
async function packageManifests(): Promise<Map<string, Manifest>> {
  const out = new Map<string, Manifest>();
  for (const entry of await readdir(join(ROOT, 'packages'))) {
    const text = await readFile(join(ROOT, 'packages', entry, 'package.json'), 'utf8').catch(() => undefined);
    if (text !== undefined) out.set(`packages/${entry}`, JSON.parse(text) as Manifest);
  }
  return out;
}

/** Module specifiers a file imports or re-exports (static and dynamic). */
function specifiers(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"]([^'"]+)['"]/g))
    found.push(m[1]!);
  return found;
}

describe('house rules (issue 14, DESIGN §2)', async () => {
  const files = (await Promise.all((await sourceDirs()).map(tsFiles))).flat();
  const apps = await appNames();
  const packages = await packageManifests();

  it('finds the sources it checks', () => {
    expect(files.length).toBeGreaterThan(100);
    expect([...apps.values()].sort()).toEqual(['apps/demo', 'apps/monitor-runner', 'apps/worker']);
  });

  it('every source file over 300 lines starts with a one-line reason', async () => {
    const missing: string[] = [];
    for (const file of files) {
      const text = await readFile(join(ROOT, file), 'utf8');
      const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
      if (lines > 300 && !/^\/\/ Over 300 lines: \S/.test(text)) missing.push(`${file} (${lines} lines)`);
    }
    expect(missing).toEqual([]);
  });

  it("no app's sources or tests import another app, and no package source imports an app", async () => {
    const crossing: string[] = [];
    // An app's tests count too: what two apps must agree on is checked here, in tooling/repo-checks.
    const appTests = (await Promise.all([...apps.values()].map((dir) => tsFiles(`${dir}/test`)))).flat();
    expect(appTests.length).toBeGreaterThan(50);
    for (const file of [...files, ...appTests]) {
      // bench/ and tooling/ (the docs generator) may read the apps; packages and other apps may not.
      if (!file.startsWith('packages/') && !file.startsWith('apps/')) continue;
      const own = [...apps.values()].find((dir) => file.startsWith(`${dir}/`));
      for (const spec of specifiers(await readFile(join(ROOT, file), 'utf8'))) {
        const name = spec.split('/').slice(0, 2).join('/');
        const target = apps.get(name);
        if (target !== undefined && target !== own) crossing.push(`${file} imports ${spec}`);
        if (/(^|\/)apps\//.test(spec)) crossing.push(`${file} imports ${spec} by path`);
      }
    }
    expect(crossing).toEqual([]);
  });

  it('knows every package (a new one needs its place in the direction)', () => {
    expect([...packages.values()].map((m) => m.name).sort()).toEqual(
      Object.keys(ALLOWED_PACKAGE_EDGES).sort(),
    );
  });

  it("a package's runtime dependencies on workspace packages follow DESIGN §2's direction", () => {
    // devDependencies are left out: tests may use a package the code does not (notifier's tests run
    // its relay against @ccat/db's outbox store), and tooling (@ccat/tsconfig…) is a devDependency.
    const wrong: string[] = [];
    for (const [dir, m] of packages) {
      const allowed = ALLOWED_PACKAGE_EDGES[m.name] ?? [];
      for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies'] as const) {
        for (const dep of Object.keys(m[field] ?? {}))
          if (dep.startsWith('@ccat/') && !allowed.includes(dep))
            wrong.push(`${dir}/package.json ${field} has ${dep} (allowed: ${allowed.join(', ') || 'none'})`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it("a package's sources import only the workspace packages DESIGN §2's direction allows", async () => {
    const wrong: string[] = [];
    for (const [dir, m] of packages) {
      const allowed = ALLOWED_PACKAGE_EDGES[m.name] ?? [];
      for (const file of files.filter((f) => f.startsWith(`${dir}/src/`))) {
        for (const spec of specifiers(await readFile(join(ROOT, file), 'utf8'))) {
          const name = spec.split('/').slice(0, 2).join('/');
          if (name.startsWith('@ccat/') && name !== m.name && !allowed.includes(name))
            wrong.push(`${file} imports ${spec} (allowed: ${allowed.join(', ') || 'none'})`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
