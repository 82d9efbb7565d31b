#!/usr/bin/env node
// pnpm docs:generate: writes docs/configuration.md and the generated part of docs/runbook.md.
import { writeFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { generateAll, REPO_ROOT } from './generate.js';

const files = await generateAll();
for (const f of files) {
  await writeFile(f.path, f.expected);
  console.log(`${f.expected === f.current ? 'unchanged' : 'wrote'} ${relative(REPO_ROOT, f.path)}`);
}
