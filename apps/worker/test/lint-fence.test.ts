// The fence rule of eslint.config.js against every known evasion (adversary finding 8): the probe is
// linted as if it were an operation, and every line marked `// form:` must be reported. The
// template-string join is a type error instead: see test/files-safety/contained-types.test.ts.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const worker = fileURLToPath(new URL('..', import.meta.url));

async function lintAs(filePath: string, code: string) {
  const eslint = new ESLint({
    cwd: worker,
    // The fence rules need no type information; the probe is in no TypeScript project.
    overrideConfig: [{ files: ['**/*.ts'], languageOptions: { parserOptions: { projectService: false } } }],
    ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports' || ruleId === 'no-restricted-syntax',
  });
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages;
}

describe('the fence lint rule', () => {
  it('reports every form in the probe, linted as an operation', async () => {
    const code = await readFile(new URL('./lint/fence-probe.ts.txt', import.meta.url), 'utf8');
    const messages = await lintAs('src/operations/fence-probe.ts', code);
    expect(messages.filter((m) => m.fatal === true)).toEqual([]);
    const lines = code.split('\n');
    const forms = lines.flatMap((l, i) =>
      l.includes('// form:') ? [{ line: i + 1, form: l.split('// form: ')[1] }] : [],
    );
    expect(forms.length).toBeGreaterThanOrEqual(16);
    const unreported = forms.filter((f) => !messages.some((m) => m.line === f.line));
    expect(unreported).toEqual([]);
  });

  it('lets deletion.ts import destroyCopy, and nothing else of the probe', async () => {
    const ok = "import { destroyCopy } from './fenced-files.js';\nexport const d = destroyCopy;\n";
    expect(await lintAs('src/operations/deletion.ts', ok)).toEqual([]);
    expect(await lintAs('src/operations/unpack.ts', ok)).not.toEqual([]);
  });

  it('the two file modules may use node:fs, but not processes or cleanup by name', async () => {
    const code =
      "import { exec } from 'node:child_process';\nimport { removePartials } from '@ccat/recovery-handlers';\nexport const x = [exec, removePartials];\n";
    for (const f of ['src/operations/files.ts', 'src/operations/fenced-files.ts'])
      expect((await lintAs(f, code)).map((m) => m.line)).toEqual([1, 2]);
    expect(
      await lintAs(
        'src/operations/files.ts',
        "import { rm } from 'node:fs/promises';\nexport const r = rm;\n",
      ),
    ).not.toEqual([]);
  });
});
