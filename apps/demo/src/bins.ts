// Where the apps' programs are: the `bin` entry of the package (a dependency of this one) that
// declares the command, so the demo starts what an operator would and never guesses a dist path.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

interface Manifest {
  readonly dependencies?: Record<string, string>;
  readonly devDependencies?: Record<string, string>;
  readonly bin?: Record<string, string>;
}

const readManifest = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Manifest;

/**
 * The script of `command` (`ccat-worker`, `ccat-monitor`, `ccat-recovery`): looked up in the `bin`
 * map of this package's dependencies, resolved as Node resolves them. Throws when none declares it.
 */
export function binScript(command: string): string {
  const own = readManifest(require.resolve('../package.json'));
  for (const name of Object.keys({ ...own.dependencies, ...own.devDependencies })) {
    let manifest: string;
    try {
      manifest = require.resolve(`${name}/package.json`);
    } catch {
      continue; // a package that does not export its manifest declares no command of ours
    }
    const script = readManifest(manifest).bin?.[command];
    if (script !== undefined) return join(dirname(manifest), script);
  }
  throw new Error(`no dependency of @ccat/demo declares the command ${command}`);
}
