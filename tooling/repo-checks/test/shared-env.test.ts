// Issue 15, item 6: one env file shared by the worker and the monitor. Every key of the other app
// (derived from its schema, not listed here) is ignored and reported, never fatal; a misspelling of
// the app's own key still fails naming it.
import { schemaKeyPaths, envVarName, type IgnoredVariables } from '@ccat/service';
import { loadMonitorConfig, monitorConfigSchema } from '@ccat/monitor-runner';
import { loadWorkerConfig, workerConfigSchema } from '@ccat/worker';
import { describe, expect, it } from 'vitest';

/** The variables naming a key `other` has and `own` lacks (the key itself, not its children). */
function keysOnlyIn(other: unknown, own: unknown): string[] {
  const ownPaths = new Set(schemaKeyPaths(own).map((p) => p.join('.')));
  const only = schemaKeyPaths(other).filter((p) => !ownPaths.has(p.join('.')));
  // A section the app lacks altogether is covered by its first missing key.
  return only
    .filter((p) => !only.some((q) => q.length < p.length && q.every((k, i) => p[i] === k)))
    .flatMap((p) => envVarName(p) ?? []);
}

const APPS = [
  { name: 'worker', load: loadWorkerConfig, own: workerConfigSchema, other: monitorConfigSchema },
  { name: 'monitor', load: loadMonitorConfig, own: monitorConfigSchema, other: workerConfigSchema },
] as const;

describe('a shared env file', () => {
  for (const app of APPS) {
    it(`${app.name}: every key only the other app has is ignored, reported once`, () => {
      const names = keysOnlyIn(app.other, app.own);
      expect(names.length).toBeGreaterThan(3);
      const env = Object.fromEntries(names.map((n) => [n, '1']));
      const reports: IgnoredVariables[] = [];
      const config = app.load({ env, onIgnored: (i) => reports.push(i) });
      expect(config).toEqual(app.load({ env: {} }));
      expect(reports).toEqual([{ foreign: [...names].sort(), serviceLinks: [] }]);
    });

    it(`${app.name}: a misspelt key of its own still fails naming the variable`, () => {
      expect(() => app.load({ env: { CCAT_KEY_PREFX: 'x:' } })).toThrow(
        /Unrecognized key: "keyPrefx".*\(from CCAT_KEY_PREFX\)/,
      );
      expect(() => app.load({ env: { CCAT_HTTP__HOTS: '0.0.0.0' } })).toThrow(/\(from CCAT_HTTP__HOTS\)/);
    });
  }
});
