// `ingest`: the file side of registering raw data (the database side is @ccat/db registerRawFiles).
// Walks a directory inside a source location's root, refuses anything that is not a plain readable
// file under a storable name (every refusal is listed, and then nothing is registered), streams each
// file through sha256, and groups the files into raw data packages:
//   --group-by dir (default): one package per directory, named after its path under the root;
//   --group-by all: one package for the whole walk, named after <dir>;
//   --max-files N / --max-package-bytes N: a group over either limit is split, in path order, into
//   parts `<name>-p1`, `<name>-p2`… (a single file over the byte limit is a part of its own).
// Files already registered unchanged are skipped before grouping, so a re-run packages only new ones.
import { lstat, readdir, realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import {
  rawFileConflict,
  registerRawFiles,
  sortRawFiles,
  type Database,
  type RawFileInput,
  type RawPackageInput,
  type RegisteredPackage,
} from '@ccat/db';
import { ValidationError } from '@ccat/errors';
import { containedPath, hashFile } from '@ccat/recovery-handlers';
import { sql, type Kysely } from 'kysely';

export interface GroupRule {
  readonly groupBy: 'dir' | 'all';
  readonly maxFiles?: number | undefined;
  readonly maxPackageBytes?: number | undefined;
}

export interface IngestLocation {
  readonly id: number;
  /** `site/location`. */
  readonly name: string;
  readonly root: string;
  readonly bufferId: number;
  readonly buffer: string;
}

/**
 * The source location named `site/location` (or a location name unique across sites) and the one
 * active buffer of its site (or `buffer`, a location name at that site).
 * @throws Error when it is unknown, ambiguous, not an active source, or has no single buffer.
 */
export async function findIngestLocation(
  db: Kysely<Database>,
  name: string,
  buffer?: string,
): Promise<IngestLocation> {
  const [site, loc] = name.includes('/') ? name.split('/', 2) : [undefined, name];
  const { rows } = await sql<{
    id: number;
    site_id: number;
    site: string;
    name: string;
    type: string;
    root: string;
    active: boolean;
  }>`
    SELECT l.id, l.site_id, s.short_name AS site, l.name, l.location_type AS type, l.root_path AS root, l.active
    FROM data_locations l JOIN sites s ON s.id = l.site_id
    WHERE (l.name = ${loc} AND (${site ?? null}::text IS NULL OR s.short_name = ${site ?? null}))
    ORDER BY l.id`.execute(db);
  if (rows.length !== 1)
    throw new ValidationError(
      rows.length === 0
        ? `no data location ${JSON.stringify(name)}; see sites apply`
        : `location name ${JSON.stringify(name)} is ambiguous: give site/location (${rows.map((r) => `${r.site}/${r.name}`).join(', ')})`,
    );
  const src = rows[0]!;
  if (src.type !== 'source' || !src.active)
    throw new ValidationError(
      `${src.site}/${src.name} is ${src.active ? 'a' : 'an inactive'} ${src.type} location, not an active source`,
    );
  const buffers = await db
    .selectFrom('data_locations')
    .select(['id', 'name'])
    .where('site_id', '=', src.site_id)
    .where('location_type', '=', 'buffer')
    .where('active', '=', true)
    .$if(buffer !== undefined, (q) => q.where('name', '=', buffer!))
    .execute();
  if (buffers.length !== 1)
    throw new ValidationError(
      `${src.site}/${src.name}: ${buffers.length === 0 ? 'no' : 'more than one'} active buffer${buffer === undefined ? '' : ` named ${JSON.stringify(buffer)}`} at site ${src.site}${buffers.length > 1 ? '; choose one with --buffer' : ''}`,
    );
  return {
    id: src.id,
    name: `${src.site}/${src.name}`,
    root: src.root,
    bufferId: buffers[0]!.id,
    buffer: buffers[0]!.name,
  };
}

/** A walked file: its path under the root and its directory's path under the root ('' at the root). */
interface Walked {
  readonly relativePath: string;
  readonly dir: string;
}

/** Every regular file under `dir` (recursively), and a reason for everything refused. */
async function walk(root: string, dir: string): Promise<{ files: Walked[]; refused: string[] }> {
  const files: Walked[] = [];
  const refused: string[] = [];
  const visit = async (abs: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(abs, { withFileTypes: true });
    } catch (e) {
      refused.push(`${abs}: cannot list: ${(e as Error).message}`);
      return;
    }
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const path = join(abs, entry.name);
      const rel = relative(root, path).split(sep).join('/');
      try {
        containedPath(root, rel);
      } catch (e) {
        refused.push(`${path}: ${(e as Error).message}`);
        continue;
      }
      if (entry.isDirectory()) await visit(path);
      else if (entry.isSymbolicLink()) refused.push(`${path}: a symbolic link (register its target instead)`);
      else if (!entry.isFile()) refused.push(`${path}: a special file (FIFO, socket or device)`);
      else files.push({ relativePath: rel, dir: relative(root, abs).split(sep).join('/') });
    }
  };
  await visit(dir);
  return { files, refused };
}

/** Splits the files (in path order) into packages by the rule. Pure. */
export function groupFiles(
  files: readonly (RawFileInput & { dir: string })[],
  rule: GroupRule,
  allName: string,
): RawPackageInput[] {
  const groups = new Map<string, RawFileInput[]>();
  for (const f of files) {
    const key = rule.groupBy === 'all' ? allName : f.dir || allName;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  const packages: RawPackageInput[] = [];
  for (const [key, members] of groups) {
    const parts: RawFileInput[][] = [[]];
    let bytes = 0;
    for (const f of members) {
      const part = parts.at(-1)!;
      const full =
        (rule.maxFiles !== undefined && part.length >= rule.maxFiles) ||
        (rule.maxPackageBytes !== undefined && part.length > 0 && bytes + f.sizeBytes > rule.maxPackageBytes);
      if (full) {
        parts.push([f]);
        bytes = f.sizeBytes;
      } else {
        part.push(f);
        bytes += f.sizeBytes;
      }
    }
    const base = key.replace(/[^\w.-]+/g, '_').slice(0, 200);
    parts.forEach((p, i) =>
      packages.push({ name: parts.length === 1 ? base : `${base}-p${i + 1}`, files: p }),
    );
  }
  return packages;
}

export interface IngestResult {
  readonly location: string;
  readonly buffer: string;
  readonly files: number;
  readonly bytes: number;
  readonly skippedFiles: number;
  /** Registered (or, dry run, to be registered: id null). */
  readonly packages: readonly (Omit<RegisteredPackage, 'id'> & { id: string | null })[];
}

/**
 * Walks, checks and hashes every file under `dir`, then registers the new ones in packages by `rule`
 * (or, with `dryRun`, returns the packages it would register). `progress(total, done)` in bytes.
 * @throws Error listing every refused file (and nothing registered); `dir` outside the root;
 *   RAW_FILE_CONFLICT (registerRawFiles).
 */
export async function ingestDirectory(
  db: Kysely<Database>,
  location: IngestLocation,
  dir: string,
  options: GroupRule & { dryRun: boolean; progress?: ((total: number, done: number) => void) | undefined },
): Promise<IngestResult> {
  const root = await realpath(location.root);
  const abs = await realpath(dir);
  const under = relative(root, abs);
  if (under.startsWith('..') || under.startsWith(sep))
    throw new ValidationError(`${dir} is not inside the root of ${location.name} (${location.root})`);
  const { files: walked, refused } = await walk(root, abs);
  const sizes = await Promise.all(walked.map(async (f) => (await lstat(join(root, f.relativePath))).size));
  const total = sizes.reduce((a, b) => a + b, 0);
  let done = 0;
  const hashed: (RawFileInput & { dir: string })[] = [];
  for (const f of walked) {
    try {
      const before = done;
      const { size, sha256 } = await hashFile(containedPath(root, f.relativePath), {
        onBytes: (read) => options.progress?.(total, (done = before + read)),
      });
      hashed.push({ relativePath: f.relativePath, dir: f.dir, sizeBytes: size, sha256 });
    } catch (e) {
      refused.push(`${join(root, f.relativePath)}: cannot read: ${(e as Error).message}`);
    }
  }
  if (refused.length > 0)
    throw new ValidationError(
      `refused ${refused.length} entr${refused.length === 1 ? 'y' : 'ies'}; nothing registered:\n  ${refused.slice(0, 20).join('\n  ')}${refused.length > 20 ? `\n  … and ${refused.length - 20} more` : ''}`,
    );
  const sorting = await sortRawFiles(db, location.id, hashed);
  if (sorting.conflicts.length > 0) throw rawFileConflict(sorting.conflicts);
  const fresh = new Set(sorting.fresh.map((f) => f.relativePath));
  const packages = groupFiles(
    hashed.filter((f) => fresh.has(f.relativePath)),
    options,
    under === '' ? location.name.split('/')[1]! : under,
  );
  const summary = {
    location: location.name,
    buffer: location.buffer,
    files: hashed.length,
    bytes: total,
    skippedFiles: sorting.unchanged.length,
  };
  if (options.dryRun) {
    const planned = packages.map((p) => ({
      id: null,
      name: p.name,
      files: p.files.length,
      bytes: p.files.reduce((a, f) => a + f.sizeBytes, 0),
    }));
    return { ...summary, packages: planned };
  }
  const registered = await registerRawFiles(
    db,
    { sourceLocationId: location.id, bufferLocationId: location.bufferId },
    packages,
  );
  return { ...summary, packages: registered.packages };
}
