// The turbo cache key of each task must hold every variable the task reads, and nothing else: a test
// task replayed from the cache with TEST_REDIS_URL pointing at nothing would pass without running
// (issue 11, item 10), and a build keyed on DATABASE_URL rebuilds everything for nothing.
// turbo's strict environment mode also hides a variable that is not listed from the task, so a
// variable missing here is one the tests silently never see.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

interface DryTask {
  readonly taskId: string;
  readonly task: string;
  readonly hash: string;
}

/** `turbo run build test --dry=json` from the repository root with `env` added; task id → hash. */
async function dryRun(env: Record<string, string>): Promise<Map<string, DryTask>> {
  const turbo = join(ROOT, 'node_modules', '.bin', 'turbo');
  const { stdout } = await run(turbo, ['run', 'build', 'test', '--dry=json'], {
    cwd: ROOT,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', ...env },
    maxBuffer: 64 * 1024 * 1024,
  });
  const tasks = (JSON.parse(stdout) as { tasks: DryTask[] }).tasks;
  return new Map(tasks.map((t) => [t.taskId, t]));
}

function hashes(tasks: Map<string, DryTask>, task: string): Map<string, string> {
  return new Map([...tasks.values()].filter((t) => t.task === task).map((t) => [t.taskId, t.hash]));
}

function changed(a: Map<string, string>, b: Map<string, string>): string[] {
  return [...a].filter(([id, h]) => b.get(id) !== h).map(([id]) => id);
}

/** Wildcard patterns as turbo reads them (`*` = any run of characters). */
function matches(patterns: readonly string[], name: string): boolean {
  return patterns.some((p) =>
    new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`).test(name),
  );
}

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name === 'dist') continue;
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (/\.(ts|js|mjs|cjs)$/.test(e.name)) out.push(p);
  }
  return out;
}

/** Every environment variable named in the code the test tasks run (tests, their helpers, vitest config). */
async function variablesTestsRead(): Promise<Map<string, string>> {
  const dirs: string[] = [join(ROOT, 'tooling', 'test-support', 'src'), join(ROOT, 'tooling', 'vitest')];
  for (const group of ['packages', 'apps', 'tooling']) {
    for (const pkg of await readdir(join(ROOT, group))) dirs.push(join(ROOT, group, pkg, 'test'));
  }
  // The packages' testing entry points run inside the test tasks too (@ccat/db/testing reads TEST_DATABASE_URL).
  const files = [join(ROOT, 'packages', 'db', 'src', 'testing.ts')];
  for (const dir of dirs) files.push(...(await filesUnder(dir)));
  const found = new Map<string, string>();
  const read = /(?:process\.env|\benv)(?:\.([A-Z][A-Z0-9_]*)|\[\s*['"]([A-Z][A-Z0-9_]*)['"]\s*\])/g;
  for (const file of files) {
    for (const m of (await readFile(file, 'utf8')).matchAll(read))
      found.set(m[1] ?? m[2]!, relative(ROOT, file));
  }
  return found;
}

/**
 * The variables the apps read from their environment (their ENV_ALIASES tables, and the services'
 * shared SERVICE_ENV_ALIASES): tests start the apps
 * as child processes with the test's own environment, so these reach the code under test too.
 */
async function variablesAppsRead(): Promise<string[]> {
  const names: string[] = [];
  for (const file of [
    'packages/service/src/schemas.ts',
    'apps/worker/src/config.ts',
    'apps/monitor-runner/src/config.ts',
  ]) {
    const text = await readFile(join(ROOT, file), 'utf8');
    for (const block of text.matchAll(/ENV_ALIASES = \{([^}]*)\}/g))
      for (const m of block[1]!.matchAll(/^\s*([A-Z][A-Z0-9_]*):/gm)) names.push(m[1]!);
  }
  return names;
}

describe('the turbo cache key', () => {
  it('of the test task holds every variable the tests read; the build is keyed on none of them', async () => {
    const turboJson = JSON.parse(await readFile(join(ROOT, 'turbo.json'), 'utf8')) as {
      globalEnv?: string[];
      tasks: Record<string, { env?: string[]; passThroughEnv?: string[]; cache?: boolean }>;
    };
    const testTask = turboJson.tasks['test'];
    expect(testTask?.cache).not.toBe(false);
    const keyed = testTask?.env ?? [];
    const read = await variablesTestsRead();
    // The scan must see the variables we know the helpers read, or it scans nothing.
    expect([...read.keys()]).toEqual(expect.arrayContaining(['TEST_DATABASE_URL', 'TEST_REDIS_URL']));
    const missing = [...read]
      .filter(([name]) => !matches(keyed, name))
      .map(([name, file]) => `${name} (read in ${file})`);
    expect(missing, 'variables tests read but the test task is not keyed on').toEqual([]);
    const appMissing = (await variablesAppsRead()).filter((n) => !matches(keyed, n));
    expect(appMissing, 'variables the apps under test read but the test task is not keyed on').toEqual([]);
    expect(matches(keyed, 'CCAT_KEY_PREFIX'), 'every CCAT_ variable configures the apps').toBe(true);
    // Nothing the build does not read is in the global key.
    expect(turboJson.globalEnv ?? []).toEqual([]);
  });

  it('changes the test tasks when TEST_REDIS_URL or TEST_DATABASE_URL changes, and no build task when DATABASE_URL does', async () => {
    const base = {
      TEST_REDIS_URL: 'redis://127.0.0.1:6379',
      TEST_DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
      DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/postgres',
      REDIS_URL: 'redis://127.0.0.1:6379',
    };
    const a = await dryRun(base);
    const redisElsewhere = await dryRun({ ...base, TEST_REDIS_URL: 'redis://127.0.0.1:6999' });
    const pgElsewhere = await dryRun({
      ...base,
      TEST_DATABASE_URL: 'postgres://postgres@127.0.0.1:6998/test',
    });
    const deployment = await dryRun({
      ...base,
      DATABASE_URL: 'postgres://ops@db.example.org:5432/ccat',
      REDIS_URL: 'redis://cache.example.org:6379',
    });

    const tests = hashes(a, 'test');
    expect(tests.size).toBeGreaterThan(3);
    // An unreachable Redis or PostgreSQL for the tests cannot replay a cached pass: every test task reruns.
    expect(changed(tests, hashes(redisElsewhere, 'test')).sort()).toEqual([...tests.keys()].sort());
    expect(changed(tests, hashes(pgElsewhere, 'test')).sort()).toEqual([...tests.keys()].sort());

    const builds = hashes(a, 'build');
    expect(builds.size).toBeGreaterThan(3);
    for (const other of [redisElsewhere, pgElsewhere, deployment])
      expect(
        changed(builds, hashes(other, 'build')),
        'build tasks keyed on a variable they do not read',
      ).toEqual([]);
  });
});
