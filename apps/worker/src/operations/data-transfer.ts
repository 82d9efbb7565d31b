// data_transfer: move a transfer package from one site's BUFFER to another's through the transport,
// then verify the checksum of what arrived.
import { ChecksumVerificationError, PackageError } from '@ccat/errors';
import { hashFile, locationPath, partialPath } from '@ccat/recovery-handlers';
import { assertInsideRoot, publish, removeOwnPartial } from './fenced-files.js';
import { fileMatches } from './files.js';
import { locationRoot } from '@ccat/db';
import { required } from './required.js';
import type { Operation, OperationContext } from './types.js';

/**
 * The operation's data_transfer row (`status`, its locations) with its transfer package (`package_id`,
 * `name`, `relative_path`, `sha256`, `package_status`): what data_transfer and unpack read first.
 * Throws when the row is missing (`what` names it).
 */
export async function readTransfer(ctx: OperationContext, what: string) {
  return required(
    await ctx.db
      .selectFrom('data_transfers as t')
      .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
      .select([
        'p.id as package_id',
        'p.name',
        'p.relative_path',
        'p.sha256',
        'p.status as package_status',
        't.status',
        't.origin_location_id',
        't.destination_location_id',
      ])
      .where('t.id', '=', ctx.ref.id)
      .executeTakeFirst(),
    what,
  );
}

export const dataTransfer: Operation = {
  async run(ctx) {
    const { db, ref, signal } = ctx;
    const t = await readTransfer(ctx, `data_transfer ${ref.id}`);
    if (t.package_status !== 'completed' || t.sha256 === null) {
      throw new PackageError(`transfer package ${t.name} is not finished`, { retryable: false });
    }
    const originRoot = await locationRoot(db, t.origin_location_id);
    const source = locationPath(originRoot, t.relative_path);
    const destinationRoot = await locationRoot(db, t.destination_location_id);
    const final = locationPath(destinationRoot, t.relative_path);
    await assertInsideRoot(originRoot, source);
    await assertInsideRoot(destinationRoot, final);
    if (await fileMatches(final, t.sha256, signal)) return { bytes: 0 };
    await ctx.checkpoint('start');
    const partial = partialPath(final, ref.attempt);
    await ctx.transport.copy(source, partial, { signal, onBytes: (n) => ctx.progress(n) });
    await ctx.checkpoint('middle');
    const arrived = await hashFile(partial, { signal });
    if (arrived.sha256 !== t.sha256) {
      await removeOwnPartial(ctx, partial);
      throw new ChecksumVerificationError(`transfer of ${t.name} arrived with a different sha256`, {
        context: { package: t.name, expected: t.sha256, got: arrived.sha256, transport: ctx.transport.name },
      });
    }
    await publish(ctx, partial, { root: destinationRoot, path: final });
    return { bytes: arrived.size };
  },
};
