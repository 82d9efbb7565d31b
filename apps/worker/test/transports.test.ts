import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BBCPError, ConfigurationError, OperationAbortedError } from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCommandTransport, createLocalCopyTransport } from '../src/transports.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ccat-transport-'));
  await writeFile(join(dir, 'src.tar'), Buffer.alloc(300_000, 7));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const opts = (signal = new AbortController().signal) => {
  const seen: number[] = [];
  return { signal, onBytes: (n: number) => seen.push(n), seen };
};

describe('transports', () => {
  it('local copy: copies into a new directory and reports bytes', async () => {
    const o = opts();
    await createLocalCopyTransport().copy(join(dir, 'src.tar'), join(dir, 'a', 'b', 'dst.tar'), o);
    expect(await readFile(join(dir, 'a', 'b', 'dst.tar'))).toEqual(await readFile(join(dir, 'src.tar')));
    expect(o.seen.at(-1)).toBe(300_000);
  });

  it('command: runs the configured argv with {source} and {destination}', async () => {
    const t = createCommandTransport({ command: ['cp', '{source}', '{destination}'] });
    expect(t.name).toBe('command:cp');
    await t.copy(join(dir, 'src.tar'), join(dir, 'c', 'dst.tar'), opts());
    expect(await readFile(join(dir, 'c', 'dst.tar'))).toEqual(await readFile(join(dir, 'src.tar')));
  });

  it('command: a failing command is a BBCPError with its exit code and stderr; configured codes are not retried', async () => {
    const t = createCommandTransport({
      command: ['sh', '-c', 'echo "bbcp: connection refused by {destination}" >&2; exit 3', '{source}'],
      nonRetryableExitCodes: [1],
    });
    const e = await t.copy(join(dir, 'src.tar'), join(dir, 'd', 'x'), opts()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BBCPError);
    expect(e).toMatchObject({ code: 'BBCP_ERROR', retryable: true, context: { exitCode: 3 } });
    expect((e as BBCPError).message).toMatch(/exited with 3: bbcp: connection refused/);
    const fatal = createCommandTransport({
      command: ['sh', '-c', 'exit 1', '{source}', '{destination}'],
      nonRetryableExitCodes: [1],
    });
    await expect(fatal.copy('x', join(dir, 'e', 'y'), opts())).rejects.toMatchObject({
      retryable: false,
      context: { exitCode: 1 },
    });
  });

  it('command: aborting kills the command', async () => {
    const ac = new AbortController();
    const t = createCommandTransport({ command: ['sh', '-c', 'sleep 30', '{source}', '{destination}'] });
    const started = Date.now();
    const p = t.copy('a', join(dir, 'f', 'b'), opts(ac.signal));
    setTimeout(() => ac.abort(new Error('lease lost')), 100);
    await expect(p).rejects.toBeInstanceOf(OperationAbortedError);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('command: a command line without placeholders is a configuration error', () => {
    expect(() => createCommandTransport({ command: ['rsync', '-a'] })).toThrow(ConfigurationError);
    expect(() => createCommandTransport({ command: [] })).toThrow(ConfigurationError);
  });
});
