// Claims the hand-written docs make that the code can check: defaults, variable names, and what a
// new reader meets first (issue 16, item 5). docs/configuration.md is generated from the schemas.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EVENT_CATALOGUE } from '@ccat/errors';
import { workerConfigSchema } from '../src/config.js';

const doc = (path: string) => readFileSync(new URL(`../../../${path}`, import.meta.url), 'utf8');
const minimal = { database: { url: 'postgres://h/db' }, redis: { url: 'redis://h' } };
const HAND_WRITTEN = ['README.md', 'docs/runbook.md', 'docs/scale.md'];

describe('what the docs claim', () => {
  it('the pool default of docs/scale.md is the schema default', () => {
    const claim = /`database\.poolSize` \(default (\d+), worker and monitor alike\)/.exec(
      doc('docs/scale.md'),
    );
    expect(claim?.[1]).toBe(String(workerConfigSchema.parse(minimal).database.poolSize));
  });

  it('transport is optional (local) and docs/configuration.md says so', () => {
    expect(workerConfigSchema.parse(minimal).transport).toEqual({ kind: 'local' });
    expect(doc('docs/configuration.md')).toContain('Absent: `{ "kind": "local" }`');
  });

  it('every CCAT_ variable the hand-written docs name exists', () => {
    const generated = doc('docs/configuration.md');
    const known = ['CCAT_CONFIG', 'CCAT_KEY_PREFIX', 'CCAT_TRANSPORT_RUN'];
    for (const path of HAND_WRITTEN)
      for (const [name] of doc(path).matchAll(/CCAT_[A-Z0-9_]*[A-Z0-9]/g))
        expect(known.includes(name) || generated.includes(`\`${name}\``), `${path}: ${name}`).toBe(true);
  });

  it('the README says how to get pnpm before its first pnpm command', () => {
    const readme = doc('README.md');
    expect(readme.indexOf('npm install --global pnpm')).toBeGreaterThan(-1);
    expect(readme.indexOf('npm install --global pnpm')).toBeLessThan(readme.indexOf('pnpm install'));
  });

  it('the README\'s "Running it" creates the database its DATABASE_URL names before migrating it', () => {
    const block = /## Running it\n\n```sh\n([\s\S]*?)```/.exec(doc('README.md'))?.[1] ?? '';
    const url = /DATABASE_URL=(\S+)/.exec(block)?.[1];
    expect(url).toBeDefined();
    const name = new URL(url!).pathname.slice(1);
    const lines = block.split('\n');
    const create = lines.findIndex((l) => new RegExp(`^createdb\\b.*\\s${name}(\\s|$)`).test(l));
    const migrate = lines.findIndex((l) => /\bmigrate\b/.test(l));
    expect(create, block).toBeGreaterThan(-1);
    expect(create).toBeLessThan(migrate);
  });

  it('docs/scale.md says what happens to rows no worker serves as the code does: pending if undispatched, scheduled if unclaimed, warned per queue', () => {
    const scale = doc('docs/scale.md');
    expect(scale).toMatch(/its rows stay `pending`;/);
    expect(scale).toMatch(
      /they stay `scheduled`, and after `monitor\.scheduleTimeoutMs` the monitor also logs\s+a warning/,
    );
    // The names the docs give are the ones the code uses.
    expect(scale).toContain('`ccat_operations_unserved{operation_type}`');
    expect(scale).toContain('`work_unserved`');
    expect(scale).toContain('no live worker serves queue Q');
    expect(Object.keys(EVENT_CATALOGUE)).toContain('work_unserved');
    expect(EVENT_CATALOGUE.work_unserved.level).toBe('WARNING');
    expect(doc('docs/runbook.md')).toContain('### `work_unserved` (WARNING)');
  });
});
