// What `pnpm docs:generate` writes, computed in memory: the test compares it with the committed files.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { renderConfigurationReference } from './config-reference.js';
import { formatMarkdown } from './markdown.js';
import { renderRunbook } from './runbook.js';
import { loadSources, sourceEntry, type Sources } from './sources.js';

/** The repository root (this file is tooling/docs/{src,dist}/generate.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export interface GeneratedFile {
  readonly path: string;
  /** What the file holds now ('' when it does not exist). */
  readonly current: string;
  /** What it should hold. */
  readonly expected: string;
}

/** Parses the sources the docs are generated from (the two apps and what they import). */
export function loadWorkspaceSources(): Sources {
  return loadSources([sourceEntry('@ccat/worker'), sourceEntry('@ccat/monitor-runner')], REPO_ROOT);
}

async function readOr(path: string, fallback: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return fallback;
    throw e;
  }
}

export async function generateAll(sources: Sources = loadWorkspaceSources()): Promise<GeneratedFile[]> {
  const configuration = join(REPO_ROOT, 'docs', 'configuration.md');
  const runbook = join(REPO_ROOT, 'docs', 'runbook.md');
  const currentConfiguration = await readOr(configuration, '');
  const currentRunbook = await readOr(runbook, '');
  return [
    {
      path: configuration,
      current: currentConfiguration,
      expected: await formatMarkdown(renderConfigurationReference(sources), configuration),
    },
    {
      path: runbook,
      current: currentRunbook,
      expected: await formatMarkdown(await renderRunbook(sources, currentRunbook), runbook),
    },
  ];
}
