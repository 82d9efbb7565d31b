// The read side of ccat-recovery (status, failures, report) and unreachable services, as real
// processes (node dist/cli.js) against a seeded database in its own schema and heartbeats under its
// own Redis key prefix (support/cli-fixture.ts).
//
// The seed (support/cli-seed.ts), events inside the default 24h window unless said otherwise:
//   A raw_data_package            completed   retry_scheduled CHECKSUM_MISMATCH
//   B raw_data_package            completed   stall_recovered STALLED
//   J raw_data_package            completed   -
//   C data_transfer               failed      retry_scheduled + permanent_failure CONNECTION_RESET
//   D data_transfer               failed      permanent_failure CHECKSUM_MISMATCH
//   E data_transfer               failed      permanent_failure CHECKSUM_MISMATCH
//   F unpack                      failed      stall_recovered STALLED + stall_exhausted STALLED_TOO_OFTEN
//   L unpack                      pending     permanent_failure UNPACK_FAILED + manual_retry
//   N unpack                      in_progress heartbeat expired
//   G long_term_archive_transfer  pending     -
//   M long_term_archive_transfer  pending     retry_scheduled TIMED_OUT three days ago
//   H deletion                    scheduled   -
//   I deletion                    in_progress heartbeat alive, progress {"bytesDone":1024}
//   K data_transfer_package       in_progress heartbeat alive, progress stalled
// The fixtures add carrier rows: 4 pending raw_data_packages (for G, M, H, I), 6 pending
// data_transfer_packages (for the data_transfers) and 3 completed data_transfers (for F, L, N).
import { adviceFor } from '@ccat/errors';
import { HeartbeatScanner } from '@ccat/heartbeat';
import { describe, expect } from 'vitest';
import { recoveryReport } from '../src/admin/report.js';
import { cliTest } from './support/cli-fixture.js';
import { expectExit, parseJsonOutput, type CliRun } from './support/cli-process.js';

const it = cliTest('cli', { heartbeats: true });

describe('status', () => {
  it('shows what is stuck and why, unserved queues, counts, in-flight tasks, stalls and services; --json agrees', async ({
    f,
  }) => {
    const [text, json, limited] = await Promise.all([
      f.cli('status'),
      f.cli('status', '--json'),
      f.inProcess('status', '--limit', '1'),
    ]);
    expectExit(text, 0);
    const out = text.stdout;
    expect(out).toMatch(/^TYPE\s+PENDING\s+SCHEDULED\s+IN_PROGRESS\s+COMPLETED\s+FAILED\s+TOTAL$/m);
    expect(out).toMatch(/^raw_data_package\s+4\s+0\s+0\s+3\s+0\s+7$/m);
    expect(out).toMatch(/^data_transfer_package\s+6\s+0\s+1\s+0\s+0\s+7$/m);
    expect(out).toMatch(/^data_transfer\s+0\s+0\s+0\s+3\s+3\s+6$/m);
    expect(out).toMatch(/^unpack\s+1\s+0\s+1\s+0\s+1\s+3$/m);
    expect(out).toMatch(/^long_term_archive_transfer\s+2\s+0\s+0\s+0\s+0\s+2$/m);
    expect(out).toMatch(/^deletion\s+0\s+1\s+1\s+0\s+0\s+2$/m);
    expect(out).toMatch(/^all\s+13\s+1\s+3\s+6\s+4\s+27$/m);
    expect(out).toContain('In-flight tasks: 3 tracked in Redis');
    expect(out).toMatch(
      new RegExp(`^deletion:${f.id('I')}:0\\s+worker-live\\s+.*\\{"bytesDone":1024\\}`, 'm'),
    );
    expect(out).toContain('Stalled now: 1 heartbeat expired, 1 progress stalled');
    expect(out).toMatch(new RegExp(`^expired\\s+unpack:${f.id('N')}:0\\s+worker-dead`, 'm'));
    expect(out).toMatch(
      new RegExp(`^progress_stalled\\s+data_transfer_package:${f.id('K')}:0\\s+worker-live`, 'm'),
    );
    expect(out).toMatch(/^monitor\s+cli-test\s+alive\s/m);
    expect(out).toMatch(/^worker\s+worker-live\s+alive\s.*\s1$/m);
    // worker-live serves only Chajnantor's raw data packages: one warning per other queue with work.
    expect(out).toMatch(
      /^WARNING: 6 waiting \(6 pending, 0 scheduled\), no live worker serves queue \S+_data_transfer_package$/m,
    );
    expect(out).toMatch(
      /^WARNING: 1 waiting \(0 pending, 1 scheduled\), no live worker serves queue \S+_deletion$/m,
    );
    expect(out).not.toMatch(/^WARNING: .*raw_data_package$/m);
    expect(out).toMatch(/^(WARNING: .*\n){4}\nStuck now: 12$/m);
    // Stuck: N (expired, its worker dead), K (progress stalled, its worker alive), and the 10 rows
    // waiting in unserved queues; I (beating and progressing) and the served raw data packages are not.
    expect(out).toContain('Stuck now: 12');
    expect(out).toMatch(/^TYPE\s+ID\s+ATTEMPT\s+AGE\s+WORKER\s+WHY$/m);
    expect(out).toMatch(
      new RegExp(
        `^unpack\\s+${f.id('N')}\\s+0\\s+\\S.*worker-dead\\s+in_progress, heartbeat \\S+ past its deadline, worker worker-dead not alive$`,
        'm',
      ),
    );
    expect(out).toMatch(
      new RegExp(
        `^data_transfer_package\\s+${f.id('K')}\\s+0\\s+.*in_progress, progress unchanged for \\S+, worker worker-live alive$`,
        'm',
      ),
    );
    expect(out).toMatch(
      new RegExp(
        `^deletion\\s+${f.id('H')}\\s+0\\s+.*scheduled, no live worker serves queue \\S+_deletion`,
        'm',
      ),
    );
    expect(out).not.toMatch(new RegExp(`^deletion\\s+${f.id('I')}\\s`, 'm'));
    expect(text.stderr).toBe('');

    expectExit(json, 0);
    const doc = parseJsonOutput(json);
    expect(doc.command).toBe('status');
    expect(doc.counts.all).toEqual({
      pending: 13,
      scheduled: 1,
      in_progress: 3,
      completed: 6,
      failed: 4,
      total: 27,
    });
    expect(doc.counts.byType.find((c: { type: string }) => c.type === 'unpack')).toEqual({
      type: 'unpack',
      pending: 1,
      scheduled: 0,
      in_progress: 1,
      completed: 0,
      failed: 1,
      total: 3,
    });
    expect(doc.inFlight.total).toBe(3);
    const deletion = doc.inFlight.tasks.find(
      (t: { taskId: string }) => t.taskId === `deletion:${f.id('I')}:0`,
    );
    expect(deletion).toMatchObject({
      operationType: 'deletion',
      operationId: f.id('I'),
      attempt: 0,
      workerId: 'worker-live',
      progress: { bytesDone: 1024 },
    });
    expect(deletion.heartbeatAgeMs).toBeGreaterThanOrEqual(0);
    expect(deletion.heartbeatAgeMs).toBeLessThan(5_000);
    expect(doc.stalledNow).toMatchObject({ expiredTotal: 1, progressStalledTotal: 1, corrupt: 0 });
    expect(
      doc.stalledNow.tasks.map((t: { kind: string; taskId: string }) => `${t.kind} ${t.taskId}`).sort(),
    ).toEqual([`expired unpack:${f.id('N')}:0`, `progress_stalled data_transfer_package:${f.id('K')}:0`]);
    expect(doc.services).toEqual([
      expect.objectContaining({
        serviceType: 'monitor',
        serviceName: 'cli-test',
        status: 'alive',
        queues: null,
      }),
      expect.objectContaining({
        serviceType: 'worker',
        serviceName: 'worker-live',
        status: 'alive',
        queues: ['cha_primecam-raw_raw_data_package'],
      }),
    ]);
    expect(
      Object.fromEntries(
        doc.unserved.map((u: { operationType: string; pending: number; scheduled: number }) => [
          u.operationType,
          u.pending + u.scheduled,
        ]),
      ),
    ).toEqual({ data_transfer_package: 6, unpack: 1, long_term_archive_transfer: 2, deletion: 1 });
    expect(doc.warnings).toHaveLength(doc.unserved.length);
    expect(doc.stuck).toMatchObject({ total: 12, more: false, complete: true });
    const n = doc.stuck.rows.find((r: { operationId: string }) => r.operationId === f.id('N'));
    expect(n).toMatchObject({
      operationType: 'unpack',
      attempt: 0,
      status: 'in_progress',
      workerId: 'worker-dead',
      workerAlive: false,
      kinds: ['heartbeat_expired'],
    });
    expect(doc.unavailable).toEqual([]);

    expectExit(limited, 0);
    expect(limited.stdout).toContain(
      'In-flight tasks: 3 tracked in Redis, the 1 nearest their deadline shown (--limit 1)',
    );
    // In-progress rows lead the stuck list (the expired one first), ahead of any waiting row.
    expect(limited.stdout).toMatch(/^Stuck now: at least \d+, the 1 longest shown \(--limit 1\)$/m);
    expect(limited.stdout).toMatch(new RegExp(`^unpack\\s+${f.id('N')}\\s+0\\s.*heartbeat`, 'm'));

    // Read-only: the stalled members are still there for the monitor.
    const c = await new HeartbeatScanner({ redis: f.redis, keyPrefix: f.prefix }).counts();
    expect(c).toMatchObject({ inFlight: 3, expiredDue: 1, stalledDue: 1 });
  });
});

describe('failures', () => {
  it('groups failure events of the window by error code and type, with examples; filters by type, code and window', async ({
    f,
  }) => {
    const [text, json, byType, byCode, week] = await Promise.all([
      f.cli('failures'),
      f.cli('failures', '--json'),
      f.inProcess('failures', '--type', 'data_transfer', '--json'),
      f.inProcess('failures', '--code', 'CHECKSUM_MISMATCH', '--json'),
      f.inProcess('failures', '--since', '7d', '--json'),
    ]);
    expectExit(text, 0);
    expect(text.stdout).toContain('Failure events in the last 24h: 9 events in 7 groups');
    expect(text.stdout).toMatch(/^CHECKSUM_MISMATCH\s+data_transfer\s+2\s/m);
    // C failed twice: one example id, not two.
    expect(text.stdout).toMatch(
      new RegExp(`^CONNECTION_RESET\\s+data_transfer\\s+2\\s.*Z\\s+${f.id('C')}$`, 'm'),
    );
    expect(text.stdout).toMatch(/^STALLED_TOO_OFTEN\s+unpack\s+1\s/m);
    expect(text.stdout).toContain('checksum mismatch on file 7');
    // Each example says where its operation is now; what is failed now comes with its retry command.
    expect(text.stdout).toContain(`    To do: ${adviceFor('CHECKSUM_MISMATCH')}`);
    expect(text.stdout).toMatch(
      new RegExp(`^ +${f.id('D')}\\s+\\d+\\s+permanent_failure\\s+\\S+ \\S+\\s+failed \\(attempt`, 'm'),
    );
    expect(text.stdout).toMatch(
      new RegExp(
        `^ +${f.id('A')}\\s+\\d+\\s+retry_scheduled\\s+\\S+ \\S+\\s+completed \\(attempt \\d+, retried since\\)`,
        'm',
      ),
    );
    expect(text.stdout).toContain(`      ccat-recovery retry data_transfer ${f.id('D')}\n`);
    expect(text.stdout).not.toContain(`ccat-recovery retry raw_data_package ${f.id('A')}`);
    // The table cuts long messages; every example names the command that prints it whole.
    expect(text.stdout).toContain(
      `    Whole messages and history:\n      ccat-recovery show raw_data_package ${f.id('A')}\n`,
    );
    expect(text.stdout).toContain(`      ccat-recovery show data_transfer ${f.id('D')}\n`);

    const groups = (run: CliRun) =>
      Object.fromEntries(
        parseJsonOutput(run).groups.map((g: { errorCode: string; operationType: string; count: number }) => [
          `${g.errorCode} ${g.operationType}`,
          g.count,
        ]),
      );
    expectExit(json, 0);
    const doc = parseJsonOutput(json);
    expect(doc).toMatchObject({ command: 'failures', since: '24h', sinceMs: 86_400_000, totalEvents: 9 });
    expect(groups(json)).toEqual({
      'CHECKSUM_MISMATCH data_transfer': 2,
      'CONNECTION_RESET data_transfer': 2,
      'CHECKSUM_MISMATCH raw_data_package': 1,
      'STALLED raw_data_package': 1,
      'STALLED unpack': 1,
      'STALLED_TOO_OFTEN unpack': 1,
      'UNPACK_FAILED unpack': 1,
    });
    const checksum = doc.groups.find(
      (g: { errorCode: string; operationType: string }) =>
        g.errorCode === 'CHECKSUM_MISMATCH' && g.operationType === 'data_transfer',
    );
    expect(checksum.examples.map((x: { operationId: string }) => x.operationId).sort()).toEqual(
      [f.id('D'), f.id('E')].sort(),
    );
    expect(checksum.advice).toBe(adviceFor('CHECKSUM_MISMATCH'));
    const d = checksum.examples.find((x: { operationId: string }) => x.operationId === f.id('D'));
    expect(d.current).toMatchObject({ status: 'failed' });
    expect(d.retryCommand).toBe(`ccat-recovery retry data_transfer ${f.id('D')}`);
    const example = (code: string, type: string, id: string) =>
      doc.groups
        .find(
          (g: { errorCode: string; operationType: string }) =>
            g.errorCode === code && g.operationType === type,
        )
        .examples.find((x: { operationId: string }) => x.operationId === id);
    // A was retried and completed since its failure; L was retried by hand and waits to run again.
    const a = example('CHECKSUM_MISMATCH', 'raw_data_package', f.id('A'));
    expect(a.current.status).toBe('completed');
    expect(a.current.attempt).toBeGreaterThan(a.attempt);
    expect(a.retryCommand).toBeNull();
    expect(a.showCommand).toBe(`ccat-recovery show raw_data_package ${f.id('A')}`);
    expect(d.showCommand).toBe(`ccat-recovery show data_transfer ${f.id('D')}`);
    const l = example('UNPACK_FAILED', 'unpack', f.id('L'));
    expect(l.current.status).toBe('pending');
    expect(l.retryCommand).toBeNull();
    expect(groups(byType)).toEqual({
      'CHECKSUM_MISMATCH data_transfer': 2,
      'CONNECTION_RESET data_transfer': 2,
    });
    expect(groups(byCode)).toEqual({
      'CHECKSUM_MISMATCH data_transfer': 2,
      'CHECKSUM_MISMATCH raw_data_package': 1,
    });
    expect(parseJsonOutput(week).totalEvents).toBe(10);
    expect(groups(week)['TIMED_OUT long_term_archive_transfer']).toBe(1);
  });
});

describe('report', () => {
  it('prints the defined figures for the window, with a WARNING for failed notifications; --json agrees', async ({
    f,
  }) => {
    const [text, json, week] = await Promise.all([
      f.cli('report'),
      f.cli('report', '--json'),
      f.inProcess('report', '--since', '7d', '--json'),
    ]);
    expectExit(text, 0);
    // 7 operations had a failure or stall (A B C D E F L); A and B are completed now.
    // In flight is not failure: the rate is of the 6 that settled.
    expect(text.stdout).toMatch(
      /Stalled or failed in the window:\s+7 operations; 2 completed since, 4 failed for good, 1 still in flight/,
    );
    expect(text.stdout).toMatch(
      /Recovery success rate:\s+33\.3%\s+\(2 completed of the 6 of them that settled\)/,
    );
    // A's retry + B's stall recovery, over A, B, J completed in the window.
    expect(text.stdout).toMatch(
      /Retries per completed operation:\s+0\.67\s+\(2 automatic retries .* \/ 3 operations completed/,
    );
    expect(text.stdout).toMatch(/Stalls recovered:\s+2$/m);
    expect(text.stdout).toMatch(/Stalls exhausted:\s+1$/m);
    expect(text.stdout).toMatch(/Notifications:\s+3 sent, 1 failed, 2 digested, 1 pending$/m);
    expect(text.stdout).toMatch(/^WARNING: 1 notification failed delivery in the window/m);
    expect(text.stdout).toMatch(/^raw_data_package\s+2\s+2\s+0\s+0\s+100\.0%\s+3\s+2\s+0\.67$/m);
    expect(text.stdout).toMatch(/^data_transfer\s+3\s+0\s+3\s+0\s+0\.0%\s+0\s+0\s+n\/a$/m);
    expect(text.stdout).toContain('What the figures mean');
    expect(text.stdout).toMatch(
      /^ {2}recovery success rate: of the operations with at least one retry_scheduled \/ permanent_failure/m,
    );

    expectExit(json, 0);
    const doc = parseJsonOutput(json);
    expect(doc).toMatchObject({
      command: 'report',
      since: '24h',
      recoverySuccessRate: { affected: 7, settled: 6, completed: 2, failed: 4, inFlight: 1, missing: 0 },
      retriesPerCompletedOperation: { retries: 2, completedInWindow: 3 },
      stalls: { recovered: 2, exhausted: 1 },
      notifications: { sent: 3, failed: 1, digested: 2, pending: 1 },
      events: {
        retry_scheduled: 2,
        permanent_failure: 4,
        stall_recovered: 2,
        stall_exhausted: 1,
        manual_retry: 1,
      },
    });
    expect(doc.recoverySuccessRate.value).toBeCloseTo(2 / 6, 6);
    expect(doc.retriesPerCompletedOperation.value).toBeCloseTo(2 / 3, 6);
    expect(doc.warnings).toHaveLength(1);
    expect(Object.keys(doc.definitions).sort()).toEqual([
      'notifications',
      'recoverySuccessRate',
      'retriesPerCompletedOperation',
      'stallsExhausted',
      'stallsRecovered',
    ]);

    // Seven days: M's old retry joins (affected 8, M pending), and the old failed notification.
    const w = parseJsonOutput(week);
    expect(w.recoverySuccessRate).toMatchObject({ affected: 8, completed: 2, inFlight: 2 });
    expect(w.notifications.failed).toBe(2);

    // The admin query (the dashboard's too) gives the same figures on the caller's connection.
    const report = await recoveryReport(f.database.db, { since: '24h', sinceMs: 86_400_000 });
    expect(report.recoverySuccessRate).toEqual(doc.recoverySuccessRate);
  });
});

describe('unreachable services', () => {
  const deadPg = 'postgres://postgres:secret@127.0.0.1:1/x';
  it('exit 3 naming the service, where it was looked for and how to start it; never the password', async ({
    f,
  }) => {
    const [pgFailures, pgStatus, redisStatus, redisJson] = await Promise.all([
      f.cliWith({ DATABASE_URL: deadPg }, 'failures'),
      f.inProcessWith({ DATABASE_URL: deadPg }, 'status'),
      f.cliWith({ REDIS_URL: 'redis://:secret@127.0.0.1:1' }, 'status'),
      f.inProcessWith({ REDIS_URL: 'redis://127.0.0.1:1' }, 'status', '--json'),
    ]);
    for (const run of [pgFailures, pgStatus, redisStatus, redisJson]) {
      expectExit(run, 3);
      expect(run.stdout + run.stderr).not.toContain('secret');
    }
    expect(pgFailures.stderr).toContain(
      'PostgreSQL is not reachable at postgres://postgres:[REDACTED]@127.0.0.1:1/x',
    );
    expect(pgFailures.stderr).toContain(
      'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
    expect(pgFailures.stdout).toBe('');
    // status still shows the Redis half when PostgreSQL is down, and the database half when Redis is.
    expect(pgStatus.stdout).toContain(
      'Operations by type and status: not available (PostgreSQL unreachable)',
    );
    expect(pgStatus.stdout).toContain('In-flight tasks: 3 tracked in Redis');
    expect(pgStatus.stdout).toContain('Stuck now: not available (PostgreSQL unreachable)');
    expect(redisStatus.stdout).toMatch(/^all\s+\d+\s/m);
    expect(redisStatus.stdout).toContain('In-flight tasks: not available (Redis unreachable)');
    expect(redisStatus.stderr).toContain('Redis is not reachable at redis://:[REDACTED]@127.0.0.1:1');
    expect(redisStatus.stderr).toContain('redis-server --daemonize yes');
    const doc = parseJsonOutput(redisJson);
    expect(doc.counts.all.total).toBe(27);
    expect(doc.inFlight).toBeNull();
    // Without Redis: no per-queue verdict (liveness unknown), stuck only by the database's rules.
    expect(doc.unserved).toBeNull();
    expect(doc.warnings).toEqual([]);
    expect(doc.stuck).toMatchObject({ complete: false });
    expect(redisStatus.stdout).toContain('(Redis unreachable: heartbeat and queue reasons not checked)');
    expect(doc.unavailable).toEqual([
      expect.objectContaining({ service: 'Redis', where: 'redis://127.0.0.1:1' }),
    ]);
  });
});
