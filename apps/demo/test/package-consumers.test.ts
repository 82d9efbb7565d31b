// Issue 15, item 5: how a consumer loads the packages, tried for real in child processes. They are
// ESM-only; `import` works, and on Node.js ≥ 20.19 (the engines field) so does `require`, through
// require(esm): the exports' `default` condition and no top-level await. The READMEs say so.
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '@ccat/test-support';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

const packages = await Promise.all(
  (await readdir(join(REPO_ROOT, 'packages'))).map(async (entry) => {
    const dir = join(REPO_ROOT, 'packages', entry);
    const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string };
    return { dir, name: manifest.name, readme: await readFile(join(dir, 'README.md'), 'utf8') };
  }),
);

/** Runs `code` with node in the package's directory (a package can name itself through its exports). */
async function node(dir: string, args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, args, { cwd: dir, timeout: 30_000 });
  return stdout.trim();
}

describe('package consumers', () => {
  for (const { dir, name, readme } of packages) {
    it(`${name}: import and require both load it; its README says ESM-only and shows both`, async () => {
      const count = 'Object.keys(m).length';
      const imported = await node(dir, [
        '--input-type=module',
        '-e',
        `const m = await import('${name}'); console.log(${count})`,
      ]);
      const required = await node(dir, ['-e', `const m = require('${name}'); console.log(${count})`]);
      expect(Number(imported)).toBeGreaterThan(0);
      expect(required).toBe(imported);
      expect(readme).toMatch(/ESM-only/);
      expect(readme).toContain(`from '${name}'`);
      expect(readme).toContain(`require('${name}')`);
    });
  }
});
