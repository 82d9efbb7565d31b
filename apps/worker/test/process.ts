// Real worker processes (node dist/main.js) for end-to-end tests, through test-support's process helper.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startJsonProcess, type JsonProcess } from '@ccat/test-support';

export const WORKER_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

export type WorkerProcess = JsonProcess;

/** Starts a worker with `config` written to `${dir}/${name}.json`; resolves once it says it started. */
export async function startWorker(
  dir: string,
  name: string,
  config: object,
  env: Record<string, string> = {},
): Promise<WorkerProcess> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(config, null, 2));
  return startJsonProcess({
    name,
    script: WORKER_MAIN,
    args: ['--config', file],
    env: { ...env, CCAT_CONFIG: '' },
    ready: (l) => l['msg'] === 'worker started',
  });
}
