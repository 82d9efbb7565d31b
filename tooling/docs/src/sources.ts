// What the runbook takes from source text, because no runtime object carries it: the first sentence
// of each error class's doc comment, and the codes and retryability written where errors are thrown.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is tooling/docs/{src,dist}/sources.*). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The TypeScript sources of the packages and of the two documented apps (tests and builds left out). */
async function workspaceSources(): Promise<{ file: string; text: string }[]> {
  const packages = (await readdir(join(REPO_ROOT, 'packages'))).map((p) => `packages/${p}/src`);
  const out: { file: string; text: string }[] = [];
  for (const dir of [...packages.sort(), 'apps/worker/src', 'apps/monitor-runner/src']) {
    const entries = await readdir(join(REPO_ROOT, dir), { recursive: true }).catch(() => []);
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.ts') || entry.endsWith('.d.ts')) continue;
      const file = `${dir}/${entry.split('\\').join('/')}`;
      out.push({ file, text: await readFile(join(REPO_ROOT, file), 'utf8') });
    }
  }
  return out;
}

/** Class name → the first sentence (no full stop) of its doc comment, for the classes of @ccat/errors. */
export async function errorClassSummaries(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const { file, text } of await workspaceSources()) {
    if (!file.startsWith('packages/errors/src/')) continue;
    for (const m of text.matchAll(/\/\*\*((?:(?!\*\/)[\s\S])*)\*\/\s*export class (\w+)/g)) {
      const doc = m[1]!
        .replace(/^\s*\*/gm, '')
        .replace(/\s+/g, ' ')
        .trim();
      out.set(m[2]!, /^(.+?)[.!?](\s|$)/.exec(doc)?.[1] ?? doc);
    }
  }
  return out;
}

/** Error facts set literally where something is thrown: `new Cls(msg, { code: 'A', retryable: false })`. */
export interface ThrowSite {
  /** The class constructed; undefined for a plain object literal (`{ code: 'STALLED', … }`). */
  readonly className: string | undefined;
  readonly code: string | undefined;
  readonly retryable: boolean | undefined;
  readonly maxRetries: number | undefined;
  readonly file: string;
}

/** The index just past the parenthesis that closes the one before `from` (strings not parsed). */
function closing(text: string, from: number): number {
  let depth = 1;
  let i = from;
  for (; i < text.length && depth > 0; i++) depth += text[i] === '(' ? 1 : text[i] === ')' ? -1 : 0;
  return i;
}

const CODE = /\bcode: '([A-Z][A-Z0-9_]+)'/;

function facts(text: string): Pick<ThrowSite, 'code' | 'retryable' | 'maxRetries'> {
  const retryable = /\bretryable: (true|false)\b/.exec(text)?.[1];
  const maxRetries = /\bmaxRetries: (\d+)\b/.exec(text)?.[1];
  return {
    code: CODE.exec(text)?.[1],
    retryable: retryable === undefined ? undefined : retryable === 'true',
    maxRetries: maxRetries === undefined ? undefined : Number(maxRetries),
  };
}

/**
 * Every `new X(…)` in the workspace sources whose arguments set a code, a retryability or a limit
 * literally, and every other object literal that sets an error code (`code: 'UPPER_CASE'`).
 */
export async function throwSites(): Promise<ThrowSite[]> {
  const out: ThrowSite[] = [];
  for (const { file, text } of await workspaceSources()) {
    const inCalls: [number, number][] = [];
    for (const m of text.matchAll(/\bnew (\w+)\(/g)) {
      const end = closing(text, m.index + m[0].length);
      inCalls.push([m.index, end]);
      const f = facts(text.slice(m.index, end));
      if (f.code !== undefined || f.retryable !== undefined || f.maxRetries !== undefined)
        out.push({ className: m[1], ...f, file });
    }
    for (const m of text.matchAll(new RegExp(CODE, 'g'))) {
      if (inCalls.some(([a, b]) => m.index > a && m.index < b)) continue;
      const literalEnd = text.indexOf('}', m.index);
      out.push({ className: undefined, ...facts(text.slice(m.index, literalEnd)), file });
    }
  }
  return out;
}
