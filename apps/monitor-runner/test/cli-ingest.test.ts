// `sites apply` and `ingest` against a schema of their own: an inventory applied twice (created, then
// unchanged, then updated), files registered with size and sha256 in packages by the grouping rule,
// a re-run that registers only what is new, and refusals that register nothing.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { groupFiles } from '../src/admin/ingest.js';
import { cliTest, type CliFixture } from './support/cli-fixture.js';
import { expectExit, parseJsonOutput } from './support/cli-process.js';

const it = cliTest('cli_ingest', { heartbeats: false });
let dir: string;
const inventory = (root: string, bufferRoot: string) => `
sites:
  - name: Ingest test site
    shortName: ing
    locations:
      - { name: ing-raw, type: source, root: ${root} }
      - { name: ing-buffer, type: buffer, root: ${bufferRoot} }
`;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ccat-ingest-'));
  await mkdir(join(dir, 'raw/night-1/sub'), { recursive: true });
  await mkdir(join(dir, 'buffer'));
  await writeFile(join(dir, 'raw/night-1/a.fits'), 'alpha');
  await writeFile(join(dir, 'raw/night-1/b.fits'), 'beta');
  await writeFile(join(dir, 'raw/night-1/sub/c.fits'), 'gamma');
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const files = (f: CliFixture) =>
  f.database.db
    .selectFrom('raw_data_files')
    .innerJoin('raw_data_packages as p', 'p.id', 'raw_data_files.raw_data_package_id')
    .select([
      'raw_data_files.relative_path',
      'raw_data_files.size_bytes',
      'raw_data_files.sha256',
      'p.name',
      'p.status',
    ])
    .where('p.name', 'like', 'night-1%')
    .orderBy('raw_data_files.relative_path')
    .execute();

describe('sites apply', () => {
  it('creates, then reports unchanged, updates by name, and --dry-run writes nothing', async ({ f }) => {
    const file = join(dir, 'inventory.yaml');
    await writeFile(file, inventory(join(dir, 'raw'), join(dir, 'buffer')));
    const first = await f.inProcess('sites', 'apply', file);
    expectExit(first, 0);
    expect(first.stdout).toMatch(/created\s+site\s+ing/);
    expect(first.stdout).toMatch(/created\s+location\s+ing\/ing-raw/);
    const again = await f.inProcess('sites', 'apply', file, '--json');
    expectExit(again, 0);
    expect(parseJsonOutput(again).items.map((i: { change: string }) => i.change)).toEqual([
      'unchanged',
      'unchanged',
      'unchanged',
    ]);
    const moved = join(dir, 'moved.json');
    await writeFile(
      moved,
      JSON.stringify({
        sites: [
          {
            name: 'Ingest test site',
            shortName: 'ing',
            locations: [{ name: 'ing-buffer', type: 'buffer', root: '/elsewhere' }],
          },
        ],
      }),
    );
    const dry = await f.inProcess('sites', 'apply', moved, '--dry-run');
    expect(dry.stdout).toContain('dry run: nothing written');
    expect(dry.stdout).toMatch(/updated\s+location ing\/ing-buffer {2}\(root:/);
    const loc = await f.database.db
      .selectFrom('data_locations')
      .select('root_path')
      .where('name', '=', 'ing-buffer')
      .executeTakeFirstOrThrow();
    expect(loc.root_path).toBe(join(dir, 'buffer'));
  });

  it('names the path of a bad field', async ({ f }) => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(
      bad,
      'sites:\n  - name: x\n    shortName: y\n    locations:\n      - { name: l, type: tape, root: relative }\n',
    );
    const run = await f.inProcess('sites', 'apply', bad);
    expectExit(run, 2);
    expect(run.stderr).toContain('sites.0.locations.0.type');
    expect(run.stderr).toContain('sites.0.locations.0.root: must be an absolute path');
  });

  it('refuses names no queue, key or site/location argument can carry, writing nothing', async ({ f }) => {
    const bad = join(dir, 'bad-names.yaml');
    await writeFile(
      bad,
      JSON.stringify({
        sites: [
          {
            name: 'Bad\u001b[31m',
            shortName: 'x:y',
            locations: [
              { name: 'a/b', type: 'source', root: join(dir, 'bad-a') },
              { name: 'buf\tq', type: 'buffer', root: join(dir, 'bad-b') },
              { name: '{tag}', type: 'buffer', root: join(dir, 'bad-c') },
            ],
          },
        ],
      }),
    );
    const run = await f.inProcess('sites', 'apply', bad);
    expectExit(run, 2);
    for (const field of [
      'sites.0.name',
      'sites.0.shortName',
      'sites.0.locations.0.name',
      'sites.0.locations.1.name',
      'sites.0.locations.2.name',
    ])
      expect(run.stderr).toContain(`${field}: must not contain`);
    const sites = await f.database.db
      .selectFrom('sites')
      .select('short_name')
      .where('short_name', '=', 'x:y')
      .execute();
    expect(sites).toEqual([]);
  });
});

describe('ingest', () => {
  it('registers size and sha256 per directory package, then only what is new', async ({ f }) => {
    const run = await f.inProcess('ingest', 'ing/ing-raw', join(dir, 'raw/night-1'));
    expectExit(run, 0);
    expect(run.stdout).toContain('raw_data_package night-1: 2 file(s), 9 bytes');
    expect(run.stdout).toContain('raw_data_package night-1_sub: 1 file(s), 5 bytes');
    const rows = await files(f);
    expect(rows.map((r) => [r.relative_path, Number(r.size_bytes), r.name, r.status])).toEqual([
      ['night-1/a.fits', 5, 'night-1', 'pending'],
      ['night-1/b.fits', 4, 'night-1', 'pending'],
      ['night-1/sub/c.fits', 5, 'night-1_sub', 'pending'],
    ]);
    expect(rows[0]!.sha256).toBe(createHash('sha256').update('alpha').digest('hex'));

    const again = await f.inProcess('ingest', 'ing-raw', join(dir, 'raw/night-1'), '--json');
    expectExit(again, 0);
    expect(parseJsonOutput(again)).toMatchObject({ files: 3, skippedFiles: 3, packages: [] });

    await writeFile(join(dir, 'raw/night-1/d.fits'), 'delta');
    const more = await f.inProcess('ingest', 'ing/ing-raw', join(dir, 'raw/night-1'));
    expect(more.stdout).toContain('raw_data_package night-1-2: 1 file(s), 5 bytes');
    expect(await files(f)).toHaveLength(4);
  });

  it('refuses a changed file, a symlink, a FIFO and a directory outside the root, registering nothing', async ({
    f,
  }) => {
    await writeFile(join(dir, 'raw/night-1/a.fits'), 'ALPHA!');
    await writeFile(join(dir, 'raw/night-1/e.fits'), 'epsilon');
    const changed = await f.inProcess('ingest', 'ing/ing-raw', join(dir, 'raw/night-1'));
    expectExit(changed, 4);
    expect(changed.stderr).toContain('night-1/a.fits: registered 5 bytes');
    await writeFile(join(dir, 'raw/night-1/a.fits'), 'alpha');
    await symlink('/etc/hostname', join(dir, 'raw/night-1/link.fits'));
    execFileSync('mkfifo', [join(dir, 'raw/night-1/pipe.fits')]);
    const refused = await f.inProcess('ingest', 'ing/ing-raw', join(dir, 'raw/night-1'));
    expectExit(refused, 4);
    expect(refused.stderr).toContain('refused 2 entries; nothing registered');
    expect(refused.stderr).toContain('link.fits: a symbolic link');
    expect(refused.stderr).toContain('pipe.fits: a special file');
    const outside = await f.inProcess('ingest', 'ing/ing-raw', join(dir, 'buffer'));
    expectExit(outside, 4);
    expect(outside.stderr).toContain('is not inside the root of ing/ing-raw');
    expect(await files(f)).toHaveLength(4);
    await rm(join(dir, 'raw/night-1/link.fits'));
    await rm(join(dir, 'raw/night-1/pipe.fits'));
  });

  it('splits groups by --max-files and --max-package-bytes', () => {
    const file = (relativePath: string, sizeBytes: number, d = 'n') => ({
      relativePath,
      sizeBytes,
      sha256: 'x',
      dir: d,
    });
    const all = [file('n/a', 5), file('n/b', 5), file('n/c', 20), file('m/d', 1, 'm')];
    expect(
      groupFiles(all, { groupBy: 'dir', maxFiles: 2 }, 'root').map((p) => [p.name, p.files.length]),
    ).toEqual([
      ['n-p1', 2],
      ['n-p2', 1],
      ['m', 1],
    ]);
    expect(
      groupFiles(all, { groupBy: 'all', maxPackageBytes: 10 }, 'root').map((p) => [p.name, p.files.length]),
    ).toEqual([
      ['root-p1', 2],
      ['root-p2', 1],
      ['root-p3', 1],
    ]);
  });
});
