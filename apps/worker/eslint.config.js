import config from '@ccat/eslint-config';

// DESIGN §4 "Files are fenced like rows", enforced at build time in the operations and transports:
// - every path from database values comes from @ccat/recovery-handlers' containedPath (through
//   locationPath / unpackDirectory / partialPath), so node:path's joiners are forbidden here;
// - every destroy or publish goes through operations/fenced-files.ts (a fenced check first), so fs
//   removal, rename and overwrite are forbidden everywhere else here.
const JOIN =
  'Build paths from database values with containedPath/locationPath (@ccat/recovery-handlers): they stay inside their roots.';
const DESTROY =
  'Remove, rename or overwrite only through operations/fenced-files.ts (publish/destroy/removeOwnPartial): files are fenced like rows.';
const pathJoiners = ['join', 'resolve', 'normalize', 'relative', 'format', 'posix', 'win32'];
const fsDestroyers = [
  'rm',
  'rmdir',
  'unlink',
  'rename',
  'cp',
  'copyFile',
  'writeFile',
  'truncate',
  'symlink',
  'link',
];
const fsSyncDestroyers = fsDestroyers.map((n) => `${n}Sync`);

const pathRules = [
  { name: 'node:path', importNames: pathJoiners, message: JOIN },
  { name: 'path', message: 'Import node:path.' },
];
const fsRules = [
  { name: 'node:fs/promises', importNames: fsDestroyers, message: DESTROY },
  { name: 'node:fs', importNames: [...fsDestroyers, ...fsSyncDestroyers, 'promises'], message: DESTROY },
  { name: 'fs', message: 'Import node:fs.' },
  { name: 'fs/promises', message: 'Import node:fs/promises.' },
];
// `import * as path` / `import fs from` would slip past importNames.
const noWholeModule = {
  selector:
    'ImportDeclaration[source.value=/^(node:)?(path|fs|fs\\u002Fpromises)$/] > :matches(ImportNamespaceSpecifier, ImportDefaultSpecifier)',
  message: 'Import the named functions you need, so the path and file rules can see them.',
};

export default [
  ...config,
  {
    files: ['src/operations/**/*.ts', 'src/transports.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [...pathRules, ...fsRules] }],
      'no-restricted-syntax': ['error', noWholeModule],
    },
  },
  {
    // The one place that destroys and publishes.
    files: ['src/operations/fenced-files.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: pathRules }] },
  },
];
