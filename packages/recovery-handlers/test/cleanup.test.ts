import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { OPERATION_TYPES } from '@ccat/db';
import { seedOperation } from '@ccat/db/testing';
import { ValidationError } from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createHandlerRegistry,
  locationPath,
  partialPath,
  removePartials,
  resolveOperationOutputs,
} from '../src/index.js';
import { setup, type Env } from './support.js';

let env: Env;
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccat-cleanup-'));
  env = await setup('rh_cleanup', {
    source: join(root, 'source'),
    buffer: join(root, 'buffer'),
    remoteBuffer: join(root, 'remote'),
    archive: join(root, 'archive'),
  });
});
afterAll(async () => {
  await env?.teardown();
  await rm(root, { recursive: true, force: true });
});

const touch = async (p: string, dir = false) => {
  if (dir) {
    await mkdir(join(p, 'sub'), { recursive: true });
    await writeFile(join(p, 'sub', 'half.fits'), 'x');
  } else {
    await mkdir(dirname(p), { recursive: true });
    await writeFile(p, 'partial');
  }
};

describe('partial files', () => {
  it('removes attempts up to k, keeps newer attempts, the final output and look-alikes', async () => {
    const final = join(root, 'p', 'pkg.tar');
    for (const n of [0, 1, 2, 10]) await touch(partialPath(final, n));
    await touch(final);
    await touch(`${final}.ccat-partial-x`);
    await touch(`${final}x.ccat-partial-0`);
    const removed = await removePartials(final, 2);
    expect(removed.sort()).toEqual([0, 1, 2].map((n) => partialPath(final, n)).sort());
    expect((await readdir(dirname(final))).sort()).toEqual(
      ['pkg.tar', 'pkg.tar.ccat-partial-10', 'pkg.tar.ccat-partial-x', 'pkg.tarx.ccat-partial-0'].sort(),
    );
    expect(await removePartials(join(root, 'missing', 'dir', 'f'), 5)).toEqual([]);
  });

  it('refuses relative paths that leave their location', () => {
    expect(() => locationPath('/data', '../etc/passwd')).toThrow(ValidationError);
    expect(() => locationPath('/data', '/etc/passwd')).toThrow(ValidationError);
    expect(() => locationPath('/data', 'a/../../b')).toThrow(ValidationError);
    expect(locationPath('/data', 'raw/x.tar')).toBe('/data/raw/x.tar');
  });
});

describe('each handler cleans up what interrupted runs of its operation left', () => {
  const registry = createHandlerRegistry();
  it.each(OPERATION_TYPES.map((t) => [t]))('%s', async (type) => {
    const db = env.database.db;
    const id = await seedOperation(db, env.locations, type, { status: 'in_progress', attempt: 3 });
    const outputs = await resolveOperationOutputs(db, type, id);
    expect(outputs).toHaveLength(1);
    const out = outputs[0]!;
    expect(out.path.startsWith(root)).toBe(true);
    expect(out.kind).toBe(type === 'unpack' || type === 'deletion' ? 'directory' : 'file');
    for (const n of [1, 3, 4]) await touch(partialPath(out.path, n), out.kind === 'directory');
    const { removed } = await registry.get(type).cleanup({ db, ref: { type, id, attempt: 3 } });
    expect([...removed].sort()).toEqual([partialPath(out.path, 1), partialPath(out.path, 3)].sort());
    const left = await readdir(dirname(out.path));
    expect(left.filter((n) => n.includes('.ccat-partial-'))).toEqual([
      `${out.path.split('/').at(-1)}.ccat-partial-4`,
    ]);
    // Idempotent.
    expect((await registry.get(type).cleanup({ db, ref: { type, id, attempt: 3 } })).removed).toEqual([]);
  });

  it('an operation that does not exist has nothing to clean', async () => {
    expect(await resolveOperationOutputs(env.database.db, 'data_transfer', '999999')).toEqual([]);
  });
});
