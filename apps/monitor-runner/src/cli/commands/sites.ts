// `sites apply <inventory>`: sites and data locations from a YAML or JSON file (admin/sites.ts),
// upserted by name; prints created / updated / unchanged for each, `--dry-run` writes nothing.
import { readFile } from 'node:fs/promises';
import { Command } from '@commander-js/extra-typings';
import { applyInventory, parseInventory } from '../../admin/sites.js';
import { QUERIES, withDatabase } from '../connections.js';
import type { CliContext } from '../context.js';
import { EXIT, UsageError } from '../errors.js';
import { writeJson } from '../output.js';
import { refusal } from './ingest.js';

/** `ccat-recovery sites apply <inventory> [--dry-run]`: exit 0 applied, 2 a bad file, 4 refused. */
export function sitesCommand(cli: CliContext) {
  const sites = new Command('sites').summary('manage sites and data locations (apply an inventory file)');
  sites
    .command('apply')
    .description(
      `Creates or updates the sites (by name) and data locations (by site and name) of an inventory file, YAML or JSON:

  sites:
    - name: Chajnantor
      shortName: cha
      locations:
        - { name: primecam-raw, type: source, root: /data/cha/primecam-raw }
        - { name: cha-buffer, type: buffer, root: /data/cha/buffer }

type is source, buffer, long_term_archive or processing; active defaults to true. Nothing absent from the file is deleted. Idempotent.`,
    )
    .argument('<inventory>', 'YAML or JSON file')
    .option('--dry-run', 'show what would change; write nothing')
    .action((file, options, command) =>
      cli.run(command, async (s) => {
        const text = await readFile(file, 'utf8').catch((e: Error) => {
          throw new UsageError(`cannot read ${file}: ${e.message}`);
        });
        const inventory = refusal(() => parseInventory(text, file), EXIT.usage);
        const dryRun = options.dryRun === true;
        const items = await withDatabase(s.config, QUERIES, ({ db }) =>
          applyInventory(db, inventory, dryRun),
        );
        if (s.json) writeJson(s.out, { command: 'sites apply', dryRun, items });
        else {
          if (dryRun) s.out.out('dry run: nothing written; this is what apply would do');
          for (const i of items)
            s.out.out(
              `${i.change.padEnd(9)} ${i.kind.padEnd(8)} ${i.name}${i.details.length > 0 ? `  (${i.details.join(', ')})` : ''}`,
            );
        }
        return EXIT.ok;
      }),
    );
  return sites;
}
