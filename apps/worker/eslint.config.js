import config from '@ccat/eslint-config';

// DESIGN §4 "Files are fenced like rows", enforced at build time, by construction: within the
// operations, only two modules touch the filesystem, and their functions take only ContainedPath
// (built by @ccat/recovery-handlers' containedPath), so a path joined by hand or by template string
// fails tsc wherever it is passed:
// - operations/fenced-files.ts destroys and publishes (a fenced check first);
// - operations/files.ts reads sources (regular files only) and writes partials.
// Everywhere else in the operations every filesystem, path, process and archive module is forbidden
// (every subpath: node:fs/promises, node:path/posix…), as are the ways around an import (dynamic
// import(), require, createRequire), cleanup by name (removePartials: the monitor's job), and
// `destroyCopy` outside the deletion operation (a destroy is allowed only for what no newer attempt
// re-creates). The transports module runs commands and reads /proc; it may not remove, rename or
// overwrite anything. test/lint-fence.test.ts lints a probe of every known evasion against this.
const IO =
  'Operations touch files only through operations/files.ts (reads, partial writes) and operations/fenced-files.ts (publish/destroy), with paths from containedPath (@ccat/recovery-handlers): files are fenced like rows, paths stay inside their roots.';
const DESTROY =
  'Remove, rename or overwrite only through operations/fenced-files.ts (publish/destroyCopy/removeOwnPartial): files are fenced like rows.';
const fsDestroyers = [
  'rm',
  'rmdir',
  'unlink',
  'rename',
  'cp',
  'copyFile',
  'writeFile',
  'appendFile',
  'truncate',
  'symlink',
  'link',
  'createWriteStream',
  'open',
  'openSync',
  'promises',
];
const fsSyncDestroyers = fsDestroyers.map((n) => `${n}Sync`);

/** Every module an operation could reach the filesystem or a process with, any subpath, with or without `node:`. */
const ioModules = {
  regex: '^(node:)?(fs|path|child_process|module|worker_threads|os)(/.*)?$|^tar(/.*)?$',
  message: IO,
};
const noCleanupByName = {
  name: '@ccat/recovery-handlers',
  importNames: ['removePartials'],
  message:
    'Partials are removed by the monitor (RecoveryHandler.cleanup) or by removeOwnPartial (fenced-files.ts): an operation never removes files by name.',
};
const noDestroyOutsideDeletion = {
  name: './fenced-files.js',
  importNames: ['destroyCopy'],
  message:
    'destroyCopy is for the deletion operation only: an output a newer attempt may publish is only ever replaced by a verified copy (publish).',
};
const noWayAround = [
  { selector: 'ImportExpression', message: `No dynamic import() in the operations: ${IO}` },
  {
    selector: "CallExpression[callee.name='require'], CallExpression[callee.name='createRequire']",
    message: `No require in the operations: ${IO}`,
  },
  {
    selector: 'MemberExpression[property.name=/^(binding|dlopen|_linkedBinding)$/]',
    message: `No native bindings in the operations: ${IO}`,
  },
];
const noWholeModule = {
  selector:
    'ImportDeclaration[source.value=/^(node:)?(path|fs)(\\u002F.*)?$/] > :matches(ImportNamespaceSpecifier, ImportDefaultSpecifier)',
  message: 'Import the named functions you need, so the path and file rules can see them.',
};
const fsDestroyRules = [
  {
    name: 'node:fs/promises',
    importNames: fsDestroyers.filter((n) => n !== 'promises' && !n.startsWith('create')),
    message: DESTROY,
  },
  { name: 'node:fs', importNames: [...fsDestroyers, ...fsSyncDestroyers], message: DESTROY },
  { name: 'fs', message: 'Import node:fs.' },
  { name: 'fs/promises', message: 'Import node:fs/promises.' },
  { name: 'path', message: 'Import node:path.' },
];
const otherFsPaths = {
  regex: '^(node:)?fs/.+$(?<!^node:fs/promises$)',
  message: 'Import node:fs or node:fs/promises by name.',
};

export default [
  ...config,
  {
    // Every operation: no filesystem, path, process or archive module at all.
    files: ['src/operations/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [noCleanupByName, noDestroyOutsideDeletion], patterns: [ioModules] },
      ],
      'no-restricted-syntax': ['error', ...noWayAround],
    },
  },
  {
    files: ['src/operations/deletion.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [noCleanupByName], patterns: [ioModules] }],
    },
  },
  {
    // Reads sources and writes partials (its writes refuse a target that is not a partial name).
    files: ['src/operations/files.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            noCleanupByName,
            ...fsDestroyRules.map((r) =>
              'importNames' in r
                ? { ...r, importNames: r.importNames.filter((n) => n !== 'open' && n !== 'promises') }
                : r,
            ),
          ],
          patterns: [
            { regex: '^(node:)?(child_process|module|worker_threads)(/.*)?$', message: IO },
            otherFsPaths,
          ],
        },
      ],
      'no-restricted-syntax': ['error', ...noWayAround, noWholeModule],
    },
  },
  {
    // The one place that destroys and publishes.
    files: ['src/operations/fenced-files.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noCleanupByName],
          patterns: [
            { regex: '^(node:)?(child_process|module|worker_threads)(/.*)?$|^tar(/.*)?$', message: IO },
          ],
        },
      ],
      'no-restricted-syntax': ['error', ...noWayAround, noWholeModule],
    },
  },
  {
    // Runs copy commands and reads /proc; never removes, renames or overwrites.
    files: ['src/transports.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [noCleanupByName, ...fsDestroyRules],
          patterns: [otherFsPaths, { regex: '^tar(/.*)?$', message: IO }],
        },
      ],
      'no-restricted-syntax': ['error', ...noWayAround, noWholeModule],
    },
  },
];
