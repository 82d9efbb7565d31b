import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NAME_MAX_BYTES, OPERATION_TYPES } from '@ccat/db';
import { createTestDatabase, type SeededTestDatabase, seedOperation } from '@ccat/db/testing';
import { ValidationError } from '@ccat/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  containedPath,
  createHandlerRegistry,
  locationPath,
  MAX_FINAL_NAME_BYTES,
  partialPath,
  removePartials,
  resolveOperationOutputs,
  tombPath,
  unpackDirectory,
} from '../src/index.js';

let env: SeededTestDatabase;
let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'ccat-cleanup-'));
  env = await createTestDatabase('rh_cleanup', {
    locations: {
      source: join(root, 'source'),
      buffer: join(root, 'buffer'),
      remoteBuffer: join(root, 'remote'),
      archive: join(root, 'archive'),
    },
  });
});
afterAll(async () => {
  await env?.close();
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
    expect(locationPath('/data/', 'raw/x.tar')).toBe('/data/raw/x.tar');
  });

  // issue 12 items 2 and 3: every way a database value can name the root itself or leave it.
  it.each([
    ['.', 'the root itself'],
    ['', 'the root itself'],
    ['./', 'the root itself'],
    ['a/..', 'the root itself'],
    ['a//b', 'an empty segment'],
    ['raw/', 'a trailing slash'],
    ['./raw/x.tar', 'a "." segment'],
    ['raw/x\u0000.tar', 'a NUL byte'],
    ['..\\..\\victim', 'backslashes'],
    ['/etc', 'an absolute path'],
  ])('locationPath refuses %j (%s) with a non-retryable ValidationError', (relative) => {
    const e = (() => {
      try {
        return locationPath('/data', relative);
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(ValidationError);
    expect(e).toMatchObject({ code: 'VALIDATION_FAILED', retryable: false });
  });

  // adversary finding 1: no database value may name a partial output or a tomb.
  it.each(['pkg.ccat-partial-0', 'raw/pkg.tar.ccat-partial-3', 'a.ccat-partial-1.old/x', 'x.ccat-partial-'])(
    'refuses %j: the partial marker is reserved',
    (relative) => {
      expect(() => locationPath('/data', relative)).toThrow(/reserved for the names of partial outputs/);
      expect(() => unpackDirectory('/data', relative.replaceAll('/', '_'))).toThrow(ValidationError);
    },
  );

  // adversary finding 9: a name whose partial or tomb form exceeds NAME_MAX is refused up front.
  it('refuses a last segment whose partial/tomb name would exceed NAME_MAX, accepts one that fits', () => {
    const fits = 'p'.repeat(MAX_FINAL_NAME_BYTES);
    expect(locationPath('/data', `raw/${fits}`)).toBe(`/data/raw/${fits}`);
    expect(Buffer.byteLength(tombPath(fits, 4294967295))).toBeLessThanOrEqual(NAME_MAX_BYTES);
    expect(() => locationPath('/data', `raw/${'p'.repeat(236)}.tar`)).toThrow(/NAME_MAX/);
    // Bytes, not characters: 114 three-byte characters are 342 bytes.
    expect(() => locationPath('/data', '\u6f22'.repeat(114))).toThrow(/NAME_MAX/);
    // Only the last segment gets a suffix: a long directory name above it is fine.
    expect(locationPath('/data', `${'d'.repeat(250)}/x`)).toBe(`/data/${'d'.repeat(250)}/x`);
  });

  it('refuses roots that are not absolute, the filesystem root, or climb', () => {
    for (const root of ['data', '', '/', '//', '/data/../etc', '/da\u0000ta'])
      expect(() => containedPath(root, 'x')).toThrow(ValidationError);
  });

  it('unpackDirectory keeps the package name one segment inside <root>/unpacked', () => {
    expect(unpackDirectory('/dest', 'pkg-0001')).toBe('/dest/unpacked/pkg-0001');
    for (const name of ['../../victim', '..', '.', '', 'a/b', '/abs', 'x\u0000'])
      expect(() => unpackDirectory('/dest', name)).toThrow(ValidationError);
  });

  it("removes an attempt's tomb (a final output set aside) with its partials", async () => {
    const final = join(root, 't', 'pkg');
    await touch(tombPath(final, 1), true);
    await touch(tombPath(final, 5), true);
    await touch(final, true);
    expect(await removePartials(final, 2)).toEqual([tombPath(final, 1)]);
    expect((await readdir(dirname(final))).sort()).toEqual(['pkg', 'pkg.ccat-partial-5.old']);
  });
});

describe('each handler cleans up what interrupted runs of its operation left', () => {
  const registry = createHandlerRegistry();
  it.each(OPERATION_TYPES.filter((t) => t !== 'deletion').map((t) => [t]))('%s', async (type) => {
    const db = env.database.db;
    const id = await seedOperation(db, env.locations, type, { status: 'in_progress', attempt: 3 });
    const outputs = await resolveOperationOutputs(db, type, id);
    expect(outputs).toHaveLength(1);
    const out = outputs[0]!;
    expect(out.path.startsWith(root)).toBe(true);
    expect(out.kind).toBe(type === 'unpack' ? 'directory' : 'file');
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

  // adversary finding 1: a deletion (even a refused one) writes nothing, so its cleanup removes
  // nothing, whatever lies next to the copy it names.
  it('deletion: cleanup touches nothing, not even a look-alike of its partial', async () => {
    const db = env.database.db;
    const id = await seedOperation(db, env.locations, 'deletion', { status: 'in_progress', attempt: 0 });
    expect(await resolveOperationOutputs(db, 'deletion', id)).toEqual([]);
    const copy = await db
      .selectFrom('physical_copies as c')
      .innerJoin('data_locations as l', 'l.id', 'c.location_id')
      .select(['l.root_path', 'c.relative_path'])
      .where('c.id', '=', id)
      .executeTakeFirstOrThrow();
    const lookAlike = partialPath(join(copy.root_path, copy.relative_path), 0);
    await touch(lookAlike, true);
    const { removed } = await registry
      .get('deletion')
      .cleanup({ db, ref: { type: 'deletion', id, attempt: 0 } });
    expect(removed).toEqual([]);
    expect(await readdir(lookAlike)).toEqual(['sub']);
  });

  it('an operation that does not exist has nothing to clean', async () => {
    expect(await resolveOperationOutputs(env.database.db, 'data_transfer', '999999')).toEqual([]);
  });
});
