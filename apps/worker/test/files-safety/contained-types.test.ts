// Adversary finding 8, the type half: every function of the two file modules takes a ContainedPath
// (built by containedPath), so a path joined by hand or by template string is a type error. These
// lines are compiled by `pnpm typecheck`: if a signature ever accepted a plain string again, the
// `@ts-expect-error` would be unused and tsc would fail.
import { containedPath, hashFile, openRegularFile, partialPath } from '@ccat/recovery-handlers';
import { describe, expect, it } from 'vitest';
import { assertInsideRoot, publish, removeOwnPartial } from '../../src/operations/fenced-files.js';
import { copyFile, exists, extractTar, listTar } from '../../src/operations/files.js';

const refusedAtCompileTime = (final: string, name: string) => [
  // @ts-expect-error a template-string path is not a ContainedPath
  () => hashFile(`${final}/../${name}`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => copyFile(`${final}/x`, `${final}.ccat-partial-0`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => extractTar(`${final}`, `${final}/y`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => listTar(`${final}`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => openRegularFile(`${final}/../${name}`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => exists(`${final}/../${name}`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => assertInsideRoot('/data', `${final}/../${name}`),
  // @ts-expect-error a template-string path is not a ContainedPath
  () => removeOwnPartial({ ref: { type: 'unpack', id: '1', attempt: 0 } }, `${final}.ccat-partial-0`),
  () =>
    publish(undefined as never, containedPath('/data', 'x.ccat-partial-0'), {
      root: '/data',
      // @ts-expect-error a template-string path is not a ContainedPath
      path: `${final}/x`,
    }),
];

describe('file functions take only contained paths', () => {
  it('a contained path is accepted (the refused forms above are compile-time checks)', () => {
    expect(refusedAtCompileTime('/data/a', 'b')).toHaveLength(9);
    const final = containedPath('/data', 'raw/x.tar');
    expect(partialPath(final, 2)).toBe('/data/raw/x.tar.ccat-partial-2');
  });
});
