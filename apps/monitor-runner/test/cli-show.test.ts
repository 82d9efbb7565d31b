// `ccat-recovery show <type> <id>` as a real process against the seeded database of cli.test.ts (the
// seed is listed at its top): the row, the events, the notifications and the heartbeat now, the
// same figures in text and JSON, and clear refusals for an unknown type or id.
import { describe, expect } from 'vitest';
import { cliTest } from './support/cli-fixture.js';
import { expectExit, parseJsonOutput } from './support/cli-process.js';

const it = cliTest('cli_show', { heartbeats: true });

interface ShowJson {
  command: string;
  type: string;
  id: string;
  row: { status: string; attempt: number; retryCount: number; lastErrorCode: string | null };
  events: { attempt: number; event: string; errorCode: string | null; workerId: string | null }[];
  eventsTotal: number;
  notifications: { level: string; kind: string; status: string; attempts: number; subject: string }[];
  notificationsTotal: number;
  live: { member: string; tracked: boolean; workerId: string | null; progress: unknown } | null;
}

describe('show', () => {
  it('prints a failed operation whole: row, events in order, its notifications, not tracked in Redis', async ({
    f,
  }) => {
    const id = f.id('C');
    await f.database.db
      .insertInto('notifications')
      .values({
        level: 'ERROR',
        event_kind: 'permanent_failure',
        subject: `data_transfer ${id} failed`,
        body: 'seeded for the show test',
        context: '{}',
        status: 'failed',
        operation_type: 'data_transfer',
        operation_id: id,
        last_error: 'SMTP 451 try later',
      })
      .execute();
    const [text, json] = await Promise.all([
      f.cli('show', 'data_transfer', id),
      f.cli('show', 'data_transfer', id, '--json'),
    ]);
    expectExit(text, 0);
    expect(text.stdout).toContain(`data_transfer ${id}`);
    expect(text.stdout).toMatch(/status:\s+failed/);
    expect(text.stdout).toMatch(/last error:\s+CONNECTION_RESET/);
    expect(text.stdout).toContain('Events: 2 events');
    expect(text.stdout).toMatch(/retry_scheduled\s+CONNECTION_RESET\s+seed-worker/);
    expect(text.stdout).toMatch(/permanent_failure\s+CONNECTION_RESET\s+seed-worker/);
    expect(text.stdout).toContain('Notifications: 1 notification');
    expect(text.stdout).toContain('SMTP 451 try later');
    expect(text.stdout).toContain(`Now in Redis: data_transfer:${id}:1 not tracked`);

    expectExit(json, 0);
    const doc = parseJsonOutput(json) as ShowJson;
    expect(doc).toMatchObject({
      command: 'show',
      type: 'data_transfer',
      id,
      row: { status: 'failed', attempt: 1, retryCount: 1, lastErrorCode: 'CONNECTION_RESET' },
      eventsTotal: 2,
      notificationsTotal: 1,
      live: { member: `data_transfer:${id}:1`, tracked: false },
    });
    expect(doc.events.map((e) => [e.attempt, e.event, e.errorCode])).toEqual([
      [0, 'retry_scheduled', 'CONNECTION_RESET'],
      [1, 'permanent_failure', 'CONNECTION_RESET'],
    ]);
    expect(doc.notifications).toEqual([
      expect.objectContaining({ level: 'ERROR', kind: 'permanent_failure', status: 'failed', attempts: 0 }),
    ]);
    // The figures are the database's.
    const events = await f.database.db
      .selectFrom('operation_events')
      .select('event')
      .where('operation_type', '=', 'data_transfer')
      .where('operation_id', '=', id)
      .execute();
    expect(events).toHaveLength(doc.eventsTotal);
  });

  it('says the last error of a completed operation is from an earlier attempt, and which', async ({ f }) => {
    // A failed at attempt 0 (CHECKSUM_MISMATCH, retry scheduled), then completed at attempt 1.
    const [text, json] = await Promise.all([
      f.inProcess('show', 'raw_data_package', f.id('A')),
      f.inProcess('show', 'raw_data_package', f.id('A'), '--json'),
    ]);
    expectExit(text, 0);
    expect(text.stdout).toMatch(/status:\s+completed/);
    expect(text.stdout).toMatch(
      /last error:\s+CHECKSUM_MISMATCH \(from attempt 0, not the current one: the operation is completed now\)/,
    );
    expect(parseJsonOutput(json).row).toMatchObject({
      status: 'completed',
      attempt: 1,
      lastErrorCode: 'CHECKSUM_MISMATCH',
      lastErrorAttempt: 0,
      lastErrorIsEarlier: true,
    });
    // A failed row's last error is its present state: no note.
    const failed = await f.inProcess('show', 'data_transfer', f.id('C'), '--json');
    expect(parseJsonOutput(failed).row).toMatchObject({ lastErrorAttempt: 1, lastErrorIsEarlier: false });
  });

  it("shows an in-flight operation's heartbeat, worker and progress; --limit bounds the lists", async ({
    f,
  }) => {
    const run = await f.cli('show', 'deletion', f.id('I'), '--json');
    expectExit(run, 0);
    const doc = parseJsonOutput(run) as ShowJson;
    expect(doc.row.status).toBe('in_progress');
    expect(doc.live).toMatchObject({
      member: `deletion:${f.id('I')}:0`,
      tracked: true,
      workerId: 'worker-live',
      progress: { bytesDone: 1024 },
    });
    const text = await f.inProcess('show', 'deletion', f.id('I'));
    expect(text.stdout).toContain(`Now in Redis: deletion:${f.id('I')}:0 in flight`);
    expect(text.stdout).toContain('{"bytesDone":1024}');

    const limitedRun = await f.inProcess('show', 'unpack', f.id('F'), '--limit', '1', '--json');
    const limited = parseJsonOutput(limitedRun) as ShowJson;
    expect(limited.events).toHaveLength(1);
    expect(limited.eventsTotal).toBe(2);
  });

  it('refuses an unknown type (exit 2) and an unknown id (exit 4) with one clear line', async ({ f }) => {
    const [type, id, bad] = await Promise.all([
      f.inProcess('show', 'teleport', '1'),
      f.cli('show', 'data_transfer', '987654321'),
      f.inProcess('show', 'data_transfer', 'x1'),
    ]);
    expectExit(type, 2);
    expect(type.stderr).toMatch(/teleport/);
    expectExit(id, 4);
    expect(id.stderr).toContain('no data_transfer operation with id 987654321');
    expect(id.stdout).toBe('');
    expectExit(bad, 2);
  });
});
