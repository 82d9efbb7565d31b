import { relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderApp } from '../src/config-reference.js';
import { generateAll, REPO_ROOT } from '../src/generate.js';
import { fixtureSchema } from './fixtures/schema.js';

/** The first line where two texts differ, for a message a human can act on. */
function firstDifference(current: string, expected: string): string {
  const a = current.split('\n');
  const b = expected.split('\n');
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if (a[i] !== b[i])
      return `first difference at line ${i + 1}:\n    committed: ${JSON.stringify(a[i]?.slice(0, 200))}\n    generated: ${JSON.stringify(b[i]?.slice(0, 200))}`;
  }
  return 'no difference';
}

describe('generated docs', () => {
  it('docs/configuration.md and docs/runbook.md match the code', async () => {
    const files = await generateAll();
    const stale = files
      .filter((f) => f.current !== f.expected)
      .map((f) => `${relative(REPO_ROOT, f.path)} is stale (${firstDifference(f.current, f.expected)})`);
    if (stale.length > 0) throw new Error(`${stale.join('\n')}\nrun pnpm docs:generate`);
  });
});

describe('renderApp', () => {
  const app = (schema: z.ZodType) => ({
    title: 'Fixture',
    command: 'fixture',
    schema,
    aliases: { FIXTURE_NAME: 'name' },
    secretFiles: ['FIXTURE_NAME'],
  });
  /** The cells of the row whose option is `option`, trimmed. */
  const row = (markdown: string, option: string): string[] | undefined =>
    markdown
      .split('\n')
      .find((l) => l.startsWith(`| \`${option}\` |`))
      ?.split(' | ')
      .map((c) => c.replace(/^\| |\s*\|$/g, '').trim());

  it('documents every option with its metadata: through helpers, spreads, arrays, maps and unions', () => {
    const md = renderApp(app(fixtureSchema));
    expect(row(md, 'name')).toEqual([
      '`name`',
      'string',
      'required',
      'non-empty',
      '`FIXTURE_NAME`, `FIXTURE_NAME_FILE` (a file holding the secret), `CCAT_NAME`',
      'A plain field.',
    ]);
    expect(md).toContain('### `section`\n\nA section.');
    expect(row(md, 'section.prefix')?.slice(2)).toEqual([
      '`"x:"`',
      '',
      '`CCAT_SECTION__PREFIX`',
      'Spread into several objects.',
    ]);
    expect(row(md, 'section.intervalMs')?.slice(4)).toEqual([
      '`CCAT_SECTION__INTERVAL_MS`',
      'Through a helper.',
    ]);
    // No generic name maps back to `requireTLS`: the enclosing object's variable takes JSON.
    expect(row(md, 'section.requireTLS')?.[4]).toBe('`CCAT_SECTION` (JSON)');
    expect(row(md, 'list[].id')?.slice(4)).toEqual(['`CCAT_LIST` (JSON)', "An item's id."]);
    expect(row(md, 'map.<key>.limit')?.slice(4)).toEqual(['`CCAT_MAP` (JSON)', "An entry's limit."]);
    expect(row(md, 'choice.kind')?.slice(1)).toEqual([
      '`"a"` or `"b"`',
      'required',
      '',
      '`CCAT_CHOICE__KIND`',
      'The first kind. The second kind.',
    ]);
  });

  it('refuses an option without a description, naming it', () => {
    const schema = z.strictObject({ a: z.strictObject({ b: z.number(), c: z.string().describe('C.') }) });
    expect(() => renderApp(app(schema))).toThrow(/fixture: options without a description.*: a\.b$/);
  });
});
