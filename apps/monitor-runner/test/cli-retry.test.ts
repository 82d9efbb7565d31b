// `ccat-recovery retry` as a real process against a seeded database of its own (the seed is listed
// at the top of cli.test.ts): exactly the rows it should change, fenced, with their events.
import type { OperationType } from '@ccat/db';
import { describe, expect } from 'vitest';
import { cliTest, type CliFixture, type Letter } from './support/cli-fixture.js';
import { expectExit, parseJsonOutput } from './support/cli-process.js';

const it = cliTest('cli_retry', { heartbeats: false });

const manualEvents = (f: CliFixture, type: OperationType, letter: Letter) =>
  f.database.db
    .selectFrom('operation_events')
    .selectAll()
    .where('operation_type', '=', type)
    .where('operation_id', '=', f.id(letter))
    .where('event', '=', 'manual_retry')
    .execute();

describe('retry', () => {
  it('retries one failed operation: pending, attempt+1, retry_count 0, a manual_retry event; refuses anything else', async ({
    f,
  }) => {
    const before = await f.row('data_transfer', 'C');
    expect(before).toMatchObject({ status: 'failed', attempt: 1, retryCount: 1 });
    const ok = await f.cli('retry', 'data_transfer', f.id('C'));
    expectExit(ok, 0);
    expect(ok.stdout).toContain(
      `retried data_transfer ${f.id('C')}: failed at attempt 1 (CONNECTION_RESET) → pending, attempt 2, retry count 0`,
    );
    expect(await f.row('data_transfer', 'C')).toMatchObject({
      status: 'pending',
      attempt: 2,
      retryCount: 0,
      finishedAt: null,
    });
    const events = await manualEvents(f, 'data_transfer', 'C');
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ attempt: 1, event: 'manual_retry' });
    expect(events[0]!.worker_id).toMatch(/^cli:[\w.@-]+$/);
    expect(events[0]!.context).toMatchObject({
      via: 'ccat-recovery',
      previousErrorCode: 'CONNECTION_RESET',
      previousRetryCount: 1,
    });

    const [again, completed, missing, json] = await Promise.all([
      f.cli('retry', 'data_transfer', f.id('C')),
      f.inProcess('retry', 'raw_data_package', f.id('A')),
      f.inProcess('retry', 'data_transfer', '999999'),
      f.cli('retry', 'raw_data_package', f.id('A'), '--json'),
    ]);
    expectExit(again, 4);
    expect(again.stderr).toContain(
      `refused: data_transfer ${f.id('C')} is pending (attempt 2), not failed; nothing changed`,
    );
    expect(again.stdout).toBe('');
    expectExit(completed, 4);
    expect(completed.stderr).toContain(`raw_data_package ${f.id('A')} is completed`);
    expectExit(missing, 4);
    expect(missing.stderr).toContain('there is no data_transfer operation with id 999999');
    expectExit(json, 4);
    expect(parseJsonOutput(json)).toMatchObject({
      command: 'retry',
      mode: 'single',
      dryRun: false,
      type: 'raw_data_package',
      id: f.id('A'),
      matched: 0,
    });
    expect(parseJsonOutput(json).results).toEqual([
      expect.objectContaining({ type: 'raw_data_package', id: f.id('A'), outcome: 'refused', eventId: null }),
    ]);
    // Refusals changed nothing.
    expect(await f.row('data_transfer', 'C')).toMatchObject({ status: 'pending', attempt: 2, retryCount: 0 });
    expect(await f.row('raw_data_package', 'A')).toMatchObject({ status: 'completed', attempt: 1 });
    expect(await manualEvents(f, 'data_transfer', 'C')).toHaveLength(1);
  });

  it('bulk: without --yes lists the matches, exits 2 and changes nothing; with --yes resets exactly those', async ({
    f,
  }) => {
    const dry = await f.cli('retry', '--type', 'data_transfer', '--code', 'CHECKSUM_MISMATCH');
    expectExit(dry, 2);
    expect(dry.stdout).toContain(
      '2 failed data_transfer operations match (last error CHECKSUM_MISMATCH); these would be retried:',
    );
    expect(dry.stdout).toMatch(new RegExp(`^\\s*${f.id('D')}\\s+0\\s+0\\s+CHECKSUM_MISMATCH`, 'm'));
    expect(dry.stderr).toContain('nothing changed: retrying 2 failed data_transfer operations needs --yes');
    const dryJson = await f.inProcess(
      'retry',
      '--type',
      'data_transfer',
      '--code',
      'CHECKSUM_MISMATCH',
      '--json',
    );
    expectExit(dryJson, 2);
    expect(parseJsonOutput(dryJson)).toMatchObject({
      command: 'retry',
      mode: 'bulk',
      dryRun: true,
      matched: 2,
      results: [],
    });
    for (const letter of ['D', 'E'] as const) {
      expect(await f.row('data_transfer', letter)).toMatchObject({ status: 'failed', attempt: 0 });
    }

    const done = await f.cli(
      'retry',
      '--type',
      'data_transfer',
      '--code',
      'CHECKSUM_MISMATCH',
      '--since',
      '1h',
      '--yes',
      '--json',
    );
    expectExit(done, 0);
    const doc = parseJsonOutput(done);
    expect(doc).toMatchObject({
      mode: 'bulk',
      dryRun: false,
      matched: 2,
      code: 'CHECKSUM_MISMATCH',
      since: '1h',
    });
    expect(doc.results.map((r: { id: string; outcome: string }) => `${r.id} ${r.outcome}`).sort()).toEqual(
      [`${f.id('D')} retried`, `${f.id('E')} retried`].sort(),
    );
    for (const letter of ['D', 'E'] as const) {
      expect(await f.row('data_transfer', letter)).toMatchObject({
        status: 'pending',
        attempt: 1,
        retryCount: 0,
      });
      expect(await manualEvents(f, 'data_transfer', letter)).toHaveLength(1);
    }
    // Other failed rows did not match: F (unpack) is still failed.
    expect(await f.row('unpack', 'F')).toMatchObject({ status: 'failed', attempt: 1 });
    // Nothing left to match: an answer, not an error.
    const none = await f.inProcess(
      'retry',
      '--type',
      'data_transfer',
      '--code',
      'CHECKSUM_MISMATCH',
      '--yes',
    );
    expectExit(none, 0);
    expect(none.stdout).toContain(
      'No failed data_transfer operations match (last error CHECKSUM_MISMATCH); nothing to retry.',
    );
  });
});
