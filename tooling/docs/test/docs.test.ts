import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateAll, REPO_ROOT } from '../src/generate.js';
import { exportedDeclaration, initializerOf, loadSources, schemaSourceDocs } from '../src/sources.js';

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

describe('schemaSourceDocs', () => {
  it('reads field comments through helpers, spreads, variables, arrays, maps and unions', () => {
    const file = fileURLToPath(new URL('./fixtures/schema.ts', import.meta.url));
    const sources = loadSources([file], REPO_ROOT);
    const docs = schemaSourceDocs(
      sources,
      initializerOf(exportedDeclaration(sources, file, 'fixtureSchema')),
    );
    expect(Object.fromEntries(docs.descriptions)).toEqual({
      name: 'A plain field.',
      section: 'A section.',
      'section.prefix': 'Spread into several objects.',
      'section.intervalMs': 'Through a helper.',
      list: 'A list.',
      'list.[].id': "An item's id.",
      map: 'A map.',
      'map.*.limit': "An entry's limit.",
      'choice.kind': 'The first kind. The second kind.',
    });
    expect(Object.fromEntries(docs.rules)).toEqual({ section: ['intervalMs must be positive'] });
  });
});
