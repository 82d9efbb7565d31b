// What `pnpm docs:generate` writes, computed in memory: the test compares it with the committed files.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderConfigurationReference } from './config-reference.js';
import { formatMarkdown } from './markdown.js';
import { renderRunbook } from './runbook.js';

/** The repository root (this file is tooling/docs/{src,dist}/generate.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One generated file: what it holds now ('' when it does not exist) and what it should hold. */
export interface GeneratedFile {
  readonly path: string;
  readonly current: string;
  readonly expected: string;
}

const readOr = (path: string): Promise<string> =>
  readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return '';
    throw e;
  });

/** docs/configuration.md and docs/runbook.md as the code says they should be, beside what they are. */
export async function generateAll(): Promise<GeneratedFile[]> {
  const configuration = join(REPO_ROOT, 'docs', 'configuration.md');
  const runbook = join(REPO_ROOT, 'docs', 'runbook.md');
  const currentRunbook = await readOr(runbook);
  return [
    {
      path: configuration,
      current: await readOr(configuration),
      expected: await formatMarkdown(await renderConfigurationReference(), configuration),
    },
    {
      path: runbook,
      current: currentRunbook,
      expected: await formatMarkdown(await renderRunbook(currentRunbook), runbook),
    },
  ];
}
