// What the deploy/ files say, read as data for the tests that hold them to the apps: the Dockerfile's
// stages (ENV, WORKDIR, USER, ENTRYPOINT, CMD, EXPOSE, the `pnpm deploy` of each target) and the
// Kubernetes manifests rendered offline by `kubectl kustomize`.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';

/** The repository's root directory. */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const DOCKERFILE = join(REPO_ROOT, 'deploy/docker/Dockerfile');

/** One `FROM … AS name` stage: its base, and what its instructions set (continuation lines joined). */
export interface DockerStage {
  readonly name: string;
  readonly from: string;
  readonly env: Record<string, string>;
  readonly workdir?: string;
  readonly user?: string;
  readonly entrypoint?: string[];
  readonly cmd?: string[];
  readonly expose: number[];
  /** Every RUN command, as written. */
  readonly run: string[];
  /** Every COPY's arguments, as written. */
  readonly copy: string[];
}

/** The stages of a Dockerfile in order. Only the exec (JSON) form of ENTRYPOINT and CMD is read. */
export function dockerStages(text = readFileSync(DOCKERFILE, 'utf8')): DockerStage[] {
  const stages: DockerStage[] = [];
  const logical = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  for (const line of logical) {
    const [, op = '', rest = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    const stage = stages.at(-1);
    switch (op.toUpperCase()) {
      case 'FROM': {
        const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
        stages.push({
          name: m?.[2] ?? String(stages.length),
          from: m?.[1] ?? rest,
          env: {},
          expose: [],
          run: [],
          copy: [],
        });
        break;
      }
      case 'ENV':
        for (const m of rest.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g))
          stage!.env[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
        break;
      case 'WORKDIR':
        Object.assign(stage!, { workdir: rest });
        break;
      case 'USER':
        Object.assign(stage!, { user: rest });
        break;
      case 'ENTRYPOINT':
        Object.assign(stage!, { entrypoint: JSON.parse(rest) as string[] });
        break;
      case 'CMD':
        Object.assign(stage!, { cmd: JSON.parse(rest) as string[] });
        break;
      case 'EXPOSE':
        stage!.expose.push(...rest.split(/\s+/).map((p) => Number.parseInt(p, 10)));
        break;
      case 'RUN':
        stage?.run.push(rest);
        break;
      case 'COPY':
        stage?.copy.push(rest);
        break;
      default:
    }
  }
  return stages;
}

/**
 * A target with what it inherits from the stages it is built on (ENV merged, the rest the nearest
 * stage's), as `docker build --target` sees it.
 */
export function dockerTarget(name: string, stages = dockerStages()): DockerStage {
  const chain: DockerStage[] = [];
  for (
    let s = stages.find((x) => x.name === name);
    s !== undefined;
    s = stages.find((x) => x.name === s.from)
  )
    chain.unshift(s);
  if (chain.length === 0) throw new Error(`no stage ${name} in ${DOCKERFILE}`);
  const pick = <K extends keyof DockerStage>(k: K) =>
    chain
      .map((s) => s[k])
      .filter((v) => v !== undefined)
      .at(-1);
  return {
    name,
    from: chain[0]!.from,
    env: Object.assign({}, ...chain.map((s) => s.env)) as Record<string, string>,
    ...(pick('workdir') !== undefined && { workdir: pick('workdir') as string }),
    ...(pick('user') !== undefined && { user: pick('user') as string }),
    ...(pick('entrypoint') !== undefined && { entrypoint: pick('entrypoint') as string[] }),
    ...(pick('cmd') !== undefined && { cmd: pick('cmd') as string[] }),
    expose: chain.flatMap((s) => s.expose),
    run: chain.flatMap((s) => s.run),
    copy: chain.flatMap((s) => s.copy),
  };
}

/**
 * The workspace directory of the package a target holds: the target copies `/out/<dir>` from the
 * build stage, and the build stage fills it with `pnpm --filter <package> deploy … --prod /out/<dir>`.
 */
export function targetPackageDir(target: DockerStage, stages = dockerStages()): { pkg: string; dir: string } {
  const out = /--from=\S+\s+(\/out\/\S+)\s/.exec(target.copy.find((c) => c.startsWith('--from=')) ?? '')?.[1];
  if (out === undefined) throw new Error(`target ${target.name} copies no /out/… from the build stage`);
  const deploy = stages
    .flatMap((s) => s.run)
    .flatMap((r) => r.split('&&'))
    .map((c) => /pnpm --filter (\S+) deploy (.*)$/.exec(c.trim()))
    .find((m) => m?.[2]?.trim().split(/\s+/).at(-1) === out);
  if (deploy === undefined || deploy === null) throw new Error(`no pnpm deploy fills ${out}`);
  const pkg = deploy[1]!;
  for (const group of ['apps', 'packages']) {
    for (const entry of readdirSync(join(REPO_ROOT, group))) {
      const dir = join(REPO_ROOT, group, entry);
      try {
        if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === pkg)
          return { pkg, dir };
      } catch {
        // not a package directory
      }
    }
  }
  throw new Error(`no workspace package ${pkg}`);
}

/** A Kubernetes object as rendered (only what the tests read is typed). */
export type K8sObject = {
  kind: string;
  metadata: { name: string; annotations?: Record<string, string> };
} & Record<string, unknown>;

/** `kubectl kustomize <dir>` (offline), parsed; fails saying how to install kubectl when it is missing. */
export function kustomize(dir: string): K8sObject[] {
  let out: string;
  try {
    out = execFileSync('kubectl', ['kustomize', join(REPO_ROOT, dir)], { encoding: 'utf8', timeout: 60_000 });
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new Error(
      code === 'ENOENT'
        ? 'kubectl is not installed: apt-get install kubernetes-client (Debian), or any kubectl ≥ 1.14'
        : `kubectl kustomize ${dir} failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return parseAllDocuments(out).map((d) => d.toJS() as K8sObject);
}
