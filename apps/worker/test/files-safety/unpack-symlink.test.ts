// Adversary finding 6: a symlink planted inside the destination root at `unpacked` carried unpack out
// of its root: a directory outside the root with the package's name failed verification, was
// destroyed through the fence and replaced by the unpacked tree; the row ended `completed`. Now the
// real path of every target's parent must lie inside the real path of its root before anything is
// read or acted on: a non-retryable VALIDATION_FAILED, nothing touched.
import { lstat, mkdir, mkdtemp, readdir, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { claim, dispatchDue, recoverStalled, updateProgress, type OperationRef } from '@ccat/db';
import { LeaseLostError } from '@ccat/errors';
import { unpackDirectory } from '@ccat/recovery-handlers';
import { afterEach, describe, expect } from 'vitest';
import { unpack } from '../../src/operations/unpack.js';
import type { OperationContext } from '../../src/operations/types.js';
import { createLocalCopyTransport } from '../../src/transports.js';
import { workerTest as it } from '../harness.js';
import { tree } from './common.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('unpack through a planted symlink', () => {
  it('a symlink at <destination>/unpacked pointing outside: refused, the outside directory untouched', async ({
    harness,
  }) => {
    const h = await harness('adv_unpacklink');
    const outside = await mkdtemp(join(tmpdir(), 'ccat-adv-outside-'));
    dirs.push(outside);
    await h.seed(2, 2);
    let victim: string | undefined;
    const outcomes = await h.runUntilQuiet({
      before: async (ref) => {
        if (ref.type !== 'unpack' || victim !== undefined) return undefined;
        const r = await h.database.db
          .selectFrom('data_transfers as t')
          .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
          .innerJoin('data_locations as l', 'l.id', 't.destination_location_id')
          .select(['p.name', 'l.root_path'])
          .where('t.id', '=', ref.id)
          .executeTakeFirstOrThrow();
        victim = join(outside, r.name);
        await mkdir(victim, { recursive: true });
        await writeFile(join(victim, 'precious.txt'), 'not ours');
        await rm(join(r.root_path, 'unpacked'), { recursive: true, force: true });
        await symlink(outside, join(r.root_path, 'unpacked'));
        return undefined;
      },
    });
    expect(victim).toBeDefined();
    const unpackOutcomes = outcomes.filter((o) => o.ref.type === 'unpack').map((o) => o.outcome);
    // What should hold: refused as a validation failure, nothing outside the root touched.
    expect(unpackOutcomes.length).toBeGreaterThan(0);
    const failed = await h.database.db
      .selectFrom('data_transfers')
      .select(['unpack_status', 'unpack_last_error_code', 'unpack_last_error_message'])
      .where('unpack_status', '=', 'failed')
      .execute();
    expect(failed[0]).toMatchObject({ unpack_last_error_code: 'VALIDATION_FAILED' });
    expect(failed[0]!.unpack_last_error_message).toMatch(/resolves outside its location root/);
    expect({ outside: await readdir(outside), victim: [...(await tree(victim!)).keys()] }).toEqual({
      outside: [victim!.split('/').at(-1)],
      victim: ['precious.txt'],
    });
  });

  it('an unpacked directory replaced by a symlink to a verified copy outside: never completed through it', async ({
    harness,
  }) => {
    const h = await harness('adv_unpackfinal');
    const outside = await mkdtemp(join(tmpdir(), 'ccat-adv-outside-'));
    dirs.push(outside);
    await h.seed(2, 2);
    const db = h.database.db;
    const ctxFor = (ref: OperationRef): OperationContext => {
      const controller = new AbortController();
      return {
        ref,
        db,
        signal: controller.signal,
        logger: h.logger,
        transport: createLocalCopyTransport(),
        progress: () => undefined,
        assertLease: async () => {
          if (!(await updateProgress(db, ref, {})).applied) {
            const e = new LeaseLostError('fenced check refused');
            controller.abort(e);
            throw e;
          }
        },
        checkpoint: () => Promise.resolve(),
      };
    };
    let checked: { outcome: string; kind: boolean } | undefined;
    await h.runUntilQuiet({
      before: async (ref: OperationRef) => {
        if (ref.type !== 'unpack' || checked !== undefined) return undefined;
        // Attempt 0 unpacks and publishes, then dies before recording it.
        expect((await claim(db, ref, { workerId: 'crashed' })).applied).toBe(true);
        await unpack.run(ctxFor(ref));
        const r = await db
          .selectFrom('data_transfers as t')
          .innerJoin('data_transfer_packages as p', 'p.id', 't.data_transfer_package_id')
          .innerJoin('data_locations as l', 'l.id', 't.destination_location_id')
          .select(['p.name', 'l.root_path'])
          .where('t.id', '=', ref.id)
          .executeTakeFirstOrThrow();
        const final = unpackDirectory(r.root_path, r.name);
        // The verified tree is moved outside the root, and a symlink to it put in its place.
        await rename(final, join(outside, r.name));
        await symlink(join(outside, r.name), final);
        const before = [...(await tree(join(outside, r.name))).keys()].sort();
        expect((await recoverStalled(db, ref, {}, { event: {} })).applied).toBe(true);
        const [next] = await dispatchDue(db, 'unpack', { limit: 1 });
        const outcome = await h.run(next!);
        checked = {
          outcome,
          // What holds: the final output is a real directory inside the root, not the link.
          kind: (await lstat(final)).isDirectory(),
        };
        expect([...(await tree(join(outside, r.name))).keys()].sort(), 'the outside copy').toEqual(before);
        return outcome;
      },
    });
    expect(checked).toMatchObject({ outcome: 'completed', kind: true });
  });
});
