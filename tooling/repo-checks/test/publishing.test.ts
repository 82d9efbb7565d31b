// Issue 15, item 5: what a package consumer and a release see. Every publishable package carries a
// license (the repository's LICENSE) and a repository field, and takes the clients its caller brings
// (ioredis, pg) as peer dependencies; `changeset version` would bump no private package (@ccat/docs,
// the apps, the tooling).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const run = promisify(execFile);

interface Manifest {
  name: string;
  private?: boolean;
  license?: string;
  repository?: { type: string; url: string; directory: string };
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

/** Every workspace package: its directory (relative to the root) and package.json. */
async function workspacePackages(): Promise<{ dir: string; manifest: Manifest }[]> {
  const out: { dir: string; manifest: Manifest }[] = [];
  for (const group of ['packages', 'apps', 'tooling']) {
    for (const entry of await readdir(join(ROOT, group))) {
      const dir = `${group}/${entry}`;
      const text = await readFile(join(ROOT, dir, 'package.json'), 'utf8').catch(() => undefined);
      if (text !== undefined) out.push({ dir, manifest: JSON.parse(text) as Manifest });
    }
  }
  out.push({
    dir: 'bench',
    manifest: JSON.parse(await readFile(join(ROOT, 'bench/package.json'), 'utf8')) as Manifest,
  });
  return out;
}

/** Clients a caller brings: one copy, the caller's, so its types and connections are the ones used. */
const CALLER_CLIENTS = ['ioredis', 'pg'];

describe('publishable packages', async () => {
  const all = await workspacePackages();
  const publishable = all.filter((p) => p.manifest.private !== true);
  const license = await readFile(join(ROOT, 'LICENSE'), 'utf8');

  it('are the packages/* ones', () => {
    expect(publishable.map((p) => p.dir).sort()).toEqual(
      all
        .filter((p) => p.dir.startsWith('packages/'))
        .map((p) => p.dir)
        .sort(),
    );
  });

  for (const { dir, manifest } of publishable) {
    it(`${manifest.name}: license (the LICENSE file's), repository, clients as peers`, () => {
      expect(manifest.license).toBe('BSD-3-Clause');
      expect(license).toMatch(/^BSD 3-Clause License\n/);
      expect(manifest.repository).toMatchObject({ type: 'git', directory: dir });
      expect(manifest.repository?.url).toMatch(/^git\+https:\/\/github\.com\/[^/]+\/ccat-recovery\.git$/);
      for (const client of CALLER_CLIENTS) {
        expect(manifest.dependencies ?? {}, `${client} must be a peer dependency`).not.toHaveProperty(client);
        if (manifest.peerDependencies?.[client] !== undefined)
          expect(manifest.devDependencies ?? {}, `${client}: a dev dependency for the tests`).toHaveProperty(
            client,
          );
      }
    });
  }

  it('a package whose dependency takes a client as a peer takes it as a peer too', () => {
    const byName = new Map(all.map((p) => [p.manifest.name, p.manifest]));
    for (const { manifest } of publishable) {
      for (const dep of Object.keys(manifest.dependencies ?? {})) {
        for (const client of Object.keys(byName.get(dep)?.peerDependencies ?? {}))
          expect(manifest.peerDependencies ?? {}, `${manifest.name} → ${dep} → ${client}`).toHaveProperty(
            client,
          );
      }
    }
  });
});

describe('changesets', () => {
  it('a release would bump no private package', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccat-changeset-'));
    try {
      const changeset = join(ROOT, 'node_modules', '.bin', 'changeset');
      await run(changeset, ['status', '--output', join(dir, 'status.json')], { cwd: ROOT });
      const status = JSON.parse(await readFile(join(dir, 'status.json'), 'utf8')) as {
        releases: { name: string; type: string }[];
      };
      const privateNames = new Set(
        (await workspacePackages()).filter((p) => p.manifest.private === true).map((p) => p.manifest.name),
      );
      expect(privateNames.has('@ccat/docs')).toBe(true);
      expect(status.releases.filter((r) => r.type !== 'none' && privateNames.has(r.name))).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
