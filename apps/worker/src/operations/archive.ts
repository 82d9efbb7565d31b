// long_term_archive_transfer: copy a raw data package to the LONG_TERM_ARCHIVE location, verify the
// copy by reading it back, record verified_at. Deletion later trusts only this.
import { ArchiveError, ChecksumVerificationError } from '@ccat/errors';
import { containedPath, hashFile, locationPath, partialPath, unpackDirectory } from '@ccat/recovery-handlers';
import { assertInsideRoot, publish, removeOwnPartial } from './fenced-files.js';
import { copyFile, fileMatches } from './files.js';
import { locationRoot } from '@ccat/db';
import { required } from './required.js';
import type { Operation } from './types.js';

export const longTermArchiveTransfer: Operation = {
  async run(ctx) {
    const { db, ref, signal } = ctx;
    const a = required(
      await db
        .selectFrom('long_term_archive_transfers as a')
        .innerJoin('raw_data_packages as r', 'r.id', 'a.raw_data_package_id')
        .leftJoin('data_transfer_packages as p', 'p.id', 'r.data_transfer_package_id')
        .select([
          'a.relative_path',
          'a.origin_location_id',
          'a.destination_location_id',
          'r.name',
          'r.relative_path as package_path',
          'r.sha256',
          'p.name as transfer_package',
        ])
        .where('a.id', '=', ref.id)
        .executeTakeFirst(),
      `long_term_archive_transfer ${ref.id}`,
    );
    if (a.sha256 === null || a.transfer_package === null) {
      throw new ArchiveError(`raw data package ${a.name} has no checksum or transfer package yet`, {
        retryable: false,
      });
    }
    const originRoot = await locationRoot(db, a.origin_location_id);
    const source = containedPath(unpackDirectory(originRoot, a.transfer_package), a.package_path);
    const destinationRoot = await locationRoot(db, a.destination_location_id);
    const final = locationPath(destinationRoot, a.relative_path);
    await assertInsideRoot(originRoot, source);
    await assertInsideRoot(destinationRoot, final);
    // verified_at, written by the fenced completion statement itself.
    const verified = { verified: true } as const;
    if (await fileMatches(final, a.sha256, signal)) return { bytes: 0, record: verified };
    await ctx.checkpoint('start');
    const partial = partialPath(final, ref.attempt);
    const read = await copyFile(source, partial, { signal, onBytes: (n) => ctx.progress(n) });
    await ctx.checkpoint('middle');
    // Verify what the archive holds, not what we sent: read the copy back.
    const written = await hashFile(partial, { signal, onBytes: (n) => ctx.progress(read.size + n) });
    if (read.sha256 !== a.sha256 || written.sha256 !== a.sha256) {
      await removeOwnPartial(ctx, partial);
      throw new ChecksumVerificationError(`archive copy of ${a.name} does not match its sha256`, {
        context: { package: a.name, expected: a.sha256, read: read.sha256, written: written.sha256 },
      });
    }
    await publish(ctx, partial, { root: destinationRoot, path: final });
    return { bytes: read.size, record: verified };
  },
};
