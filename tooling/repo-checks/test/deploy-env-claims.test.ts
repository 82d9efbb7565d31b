// docs/deploy.md §4 says what each app does with a variable that is not its own or is misspelt
// (issue 15): the table there is checked against both apps' own loaders.
import { readFileSync } from 'node:fs';
import { loadMonitorConfig } from '@ccat/monitor-runner';
import { loadWorkerConfig } from '@ccat/worker';
import { describe, expect, it } from 'vitest';

const doc = readFileSync(new URL('../../../docs/deploy.md', import.meta.url), 'utf8');
const rows = [...doc.matchAll(/^\| `(CCAT_[A-Z0-9_]+)` +\| ([^|]+?) +\| ([^|]+?) +\|$/gm)].map((m) => ({
  variable: m[1]!,
  worker: m[2]!,
  monitor: m[3]!,
}));

type Loader = (o: {
  env: Record<string, string>;
  onIgnored: (i: { foreign: readonly string[] }) => void;
}) => unknown;

/** What the app does with `variable` set, in the table's words. */
function behaviour(load: Loader, variable: string): string {
  const ignored: string[] = [];
  try {
    load({ env: { [variable]: '4' }, onIgnored: (i) => ignored.push(...i.foreign) });
  } catch (e) {
    expect((e as Error).message).toContain(variable);
    return 'stops (exit 2)';
  }
  return ignored.includes(variable) ? 'warns once, ignores it' : 'reads it';
}

describe('docs/deploy.md: what each app does with a variable', () => {
  it('lists the misspelling and the other app’s key', () => {
    expect(rows.map((r) => r.variable)).toEqual(
      expect.arrayContaining(['CCAT_CONCURENCY', 'CCAT_HTTP__PROT', 'CCAT_DISPATCHER__BUNDLE_SIZE']),
    );
  });
  for (const row of rows)
    it(`${row.variable}: worker ${row.worker}, monitor ${row.monitor}`, () => {
      expect(behaviour(loadWorkerConfig as Loader, row.variable)).toBe(row.worker);
      expect(behaviour(loadMonitorConfig as Loader, row.variable)).toBe(row.monitor);
    });
});
