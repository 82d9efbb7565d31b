// Every error code written in the packages' and apps' src/ is a row of ERROR_CODES (@ccat/errors),
// with the class and retryability the row gives it: the table the runbook and the classifier read
// is whole. What counts as a code written here: `code: 'X'` (an error's options or a record),
// `defaultCode … = 'X'` (a class's default, with the class named), and the notification channels'
// `'NOTIFY_X'` literals; a literal `retryable: true|false` beside a code must agree with its row.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { errorCodeEntry } from '@ccat/errors';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The TypeScript sources under packages/*\/src and apps/*\/src, path → text. */
async function sources(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const group of ['packages', 'apps']) {
    for (const pkg of await readdir(join(ROOT, group))) {
      const dir = join(group, pkg, 'src');
      const entries = await readdir(join(ROOT, dir), { recursive: true }).catch(() => [] as string[]);
      for (const e of entries.filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')))
        out.set(join(dir, e), await readFile(join(ROOT, dir, e), 'utf8'));
    }
  }
  return out;
}

interface Use {
  readonly file: string;
  readonly code: string;
  readonly className?: string;
  readonly retryable?: boolean;
}

/** Each code written in `text`, with the class it defaults and a literal retryability beside it. */
function uses(file: string, text: string): Use[] {
  const out: Use[] = [];
  for (const m of text.matchAll(/\bcode: '([A-Z][A-Z0-9_]+)'[^}]*/g)) {
    const r = /\bretryable: (true|false)\b/.exec(m[0])?.[1];
    out.push({ file, code: m[1]!, ...(r !== undefined && { retryable: r === 'true' }) });
  }
  for (const m of text.matchAll(
    /class (\w+) extends \w+ \{\s*static override readonly defaultCode: string = '(\w+)'/g,
  ))
    out.push({ file, code: m[2]!, className: m[1]! });
  for (const m of text.matchAll(/'(NOTIFY_[A-Z_]+)'/g)) out.push({ file, code: m[1]! });
  return out;
}

describe('ERROR_CODES', () => {
  it('has a row for every error code written in src/, with its class and retryability', async () => {
    const found: Use[] = [];
    for (const [file, text] of await sources()) found.push(...uses(file, text));
    expect(found.length).toBeGreaterThan(20);
    const problems = found.flatMap((u) => {
      const row = errorCodeEntry(u.code);
      if (row === undefined)
        return [`${u.file}: ${u.code} is not in ERROR_CODES (packages/errors/src/codes.ts)`];
      if (u.className !== undefined && row.class !== u.className)
        return [`${u.file}: ${u.code} is the default of ${u.className}, but its row names ${row.class}`];
      if (u.retryable !== undefined && row.retryable !== 'varies' && row.retryable !== u.retryable)
        return [
          `${u.file}: ${u.code} is raised with retryable ${u.retryable}, but its row says ${row.retryable}`,
        ];
      return [];
    });
    expect(problems).toEqual([]);
  });
});
