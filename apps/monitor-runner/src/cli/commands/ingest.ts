// `ingest <location> <dir>`: registers the raw data files under <dir> in raw data packages
// (admin/ingest.ts documents the grouping rule); a progress bar on stderr when it is a terminal.
import { Command, Option } from '@commander-js/extra-typings';
import { ValidationError } from '@ccat/errors';
import { findIngestLocation, ingestDirectory } from '../../admin/ingest.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { CliError, EXIT, type ExitCode } from '../errors.js';
import { integerIn } from '../options.js';
import { writeJson } from '../output.js';

/** Runs `f`; a ValidationError becomes a one-line CLI error with `code` (nothing was changed). */
export function refusal<T>(f: () => T, code: ExitCode = EXIT.refused): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ValidationError) throw new CliError(e.message, code);
    throw e;
  }
}

function terminalProgress(): ((total: number, done: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let shown = -1;
  return (total, done) => {
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    if (pct === shown) return;
    shown = pct;
    const bar = '#'.repeat(Math.floor(pct / 5)).padEnd(20, '.');
    process.stderr.write(`\rhashing [${bar}] ${pct}%${pct === 100 ? '\n' : ''}`);
  };
}

/** `ccat-recovery ingest <location> <dir>`: exit 0 registered (or nothing new), 4 refused (nothing registered). */
export function ingestCommand(cli: CliContext) {
  return new Command('ingest')
    .summary('register the raw data files under a directory in raw data packages')
    .description(
      `Registers every file under <dir> (inside the root of the source <location>, given as site/location) with its size and sha256, in pending raw data packages that the pipeline then packages, transfers and archives.

Grouping: --group-by dir (default) makes one package per directory, named after its path under the root; --group-by all one package for everything. A group over --max-files or --max-package-bytes is split into <name>-p1, -p2… Each package is registered in one transaction. The source copy of a package is deleted only when its directory holds exactly its files: a directory with data subdirectories, or split packages, keep their source copies (the deletion is refused as not safe).

Idempotent and resumable: a file already registered with the same size and sha256 is skipped; with another size or sha256 it is refused. Symbolic links, FIFOs, sockets, devices, unreadable files and names that cannot be stored are refused; any refusal registers nothing (exit 4).`,
    )
    .argument('<location>', 'source data location: site/location (or a location name unique across sites)')
    .argument('<dir>', 'directory inside the location root')
    .addOption(
      new Option('--group-by <rule>', 'dir: one package per directory; all: one package')
        .choices(['dir', 'all'] as const)
        .default('dir' as const),
    )
    .option('--max-files <N>', 'split a package at N files', integerIn('max-files', 1, 1_000_000))
    .option('--max-package-bytes <N>', 'split a package at N bytes', (raw) => {
      if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1)
        throw new CliError(
          `invalid --max-package-bytes ${JSON.stringify(raw.slice(0, 40))}: expected a positive integer`,
          EXIT.usage,
        );
      return Number(raw);
    })
    .option('--buffer <name>', 'the buffer location at the same site (default: its one active buffer)')
    .option('--dry-run', 'walk, check and hash, show the packages; register nothing')
    .action((locationName, dir, options, command) =>
      cli.run(command, async (s) => {
        const dryRun = options.dryRun === true;
        const result = await withDatabase(s.config, QUERIES, async ({ db }) => {
          try {
            const location = await findIngestLocation(db, locationName, options.buffer);
            const progress = s.json ? undefined : terminalProgress();
            return await ingestDirectory(db, location, dir, { ...options, dryRun, progress });
          } catch (e) {
            return refusal(() => {
              throw e;
            });
          }
        });
        if (s.json) writeJson(s.out, { command: 'ingest', dryRun, ...result });
        else {
          s.out.out(
            `${result.location} (buffer ${result.buffer}): ${result.files} file(s), ${result.bytes} bytes; ${result.skippedFiles} already registered`,
          );
          for (const p of result.packages) {
            const what = p.id === null ? 'would create' : `created ${p.id}`;
            s.out.out(`${what} raw_data_package ${p.name}: ${p.files} file(s), ${p.bytes} bytes`);
          }
          if (result.packages.length === 0) s.out.out('nothing new to register');
        }
        return EXIT.ok;
      }),
    );
}
