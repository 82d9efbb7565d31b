// The fault suite's checks must be able to fail: each is shown catching what it guards, and passing
// what it should pass.
import type { CcatDatabase } from '@ccat/db';
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { parseMail, type ReceivedMail } from '@ccat/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkDeliveredOnce, checkExercised, checkExits, findFatalLines } from '../src/faults/checks.js';
import type { ProcessExit } from '../src/supervisor.js';

let schema: TestDatabase;
let database: CcatDatabase;

beforeAll(async () => {
  schema = await createTestDatabase('faults_checks');
  database = schema.database;
});
afterAll(async () => {
  await schema?.close();
});

const exit = (over: Partial<ProcessExit>): ProcessExit => ({
  name: 'worker-1',
  kind: 'worker',
  pid: 42,
  code: 0,
  signal: null,
  at: 11_000,
  requested: true,
  forced: false,
  ...over,
});

describe('checkExits', () => {
  it('passes stops the suite asked for and chaos kills', () => {
    expect(checkExits([exit({}), exit({ code: null, signal: 'SIGKILL' })], 1000)).toEqual([]);
  });
  it('catches a process that ended on its own, one that needed SIGKILL, one that stopped with an error', () => {
    expect(
      checkExits(
        [
          exit({ requested: false, code: 1 }),
          exit({ name: 'monitor-2', requested: false, code: null, signal: 'SIGABRT' }),
          exit({ forced: true, code: null, signal: 'SIGKILL' }),
          exit({ code: 1 }),
        ],
        1000,
      ),
    ).toEqual([
      'worker-1 (pid 42) exited on its own at +10.0 s (exit 1)',
      'monitor-2 (pid 42) exited on its own at +10.0 s (SIGABRT)',
      'worker-1 did not stop on SIGTERM in time and was killed at +10.0 s',
      'worker-1 stopped on SIGTERM with exit 1 at +10.0 s',
    ]);
  });
});

describe('findFatalLines', () => {
  it('finds fatal JSON lines and uncaught-error output, and nothing in an ordinary log', () => {
    const ordinary = [
      JSON.stringify({ level: 30, msg: 'worker started' }),
      JSON.stringify({ level: 50, msg: 'database unreachable; retrying', err: 'ECONNREFUSED' }),
      'a line that is not JSON',
      '',
    ].join('\n');
    expect(findFatalLines([{ name: 'worker-1', text: ordinary }])).toEqual([]);
    const crashed = [
      JSON.stringify({
        level: 60,
        msg: 'uncaught exception; exiting',
        err: 'boom',
        errorCode: 'UNKNOWN_ERROR',
      }),
      "      throw er; // Unhandled 'error' event",
      'Error: Connection terminated unexpectedly',
    ].join('\n');
    expect(findFatalLines([{ name: 'monitor-1', text: crashed }])).toEqual([
      'monitor-1: fatal: uncaught exception; exiting: boom [UNKNOWN_ERROR]',
      "monitor-1: crash output: throw er; // Unhandled 'error' event",
      'monitor-1: crash output: Error: Connection terminated unexpectedly',
    ]);
    expect(findFatalLines([{ name: 'w', text: JSON.stringify({ level: 'fatal', msg: 'x' }) }])).toEqual([
      'w: fatal: x',
    ]);
  });
});

describe('checkDeliveredOnce', () => {
  it('counts mails per notification id against the outbox', async () => {
    const db = database.db;
    const row = (status: 'sent' | 'pending' | 'digested' | 'failed', attempts = 1) =>
      db
        .insertInto('notifications')
        .values({
          level: 'ERROR',
          event_kind: 'permanent_failure',
          subject: 's',
          body: 'b',
          status,
          attempts,
        })
        .returning('id')
        .executeTakeFirstOrThrow()
        .then((r) => r.id);
    const mail = (id: string | undefined): ReceivedMail => ({
      ...parseMail(`Subject: about ${id ?? 'nothing'}\r\n\r\n`, '', ['ops@example.org']),
      notificationId: id,
      receivedAt: 4500,
    });
    const once = await row('sent');
    const digest = await row('sent');
    const folded = await row('digested', 0);
    const good = [mail(once), mail(digest)];
    expect(await checkDeliveredOnce(db, good, 12)).toEqual({
      notifications: 3,
      deliveredOnce: 2,
      digested: 1,
      problems: [],
    });

    const twice = await row('sent');
    const never = await row('failed', 13);
    const r = await checkDeliveredOnce(
      db,
      [...good, mail(twice), mail(twice), mail(folded), mail(undefined), mail('999999')],
      12,
      1000,
    );
    expect(r.problems).toEqual([
      'a mail without X-CCAT-Notification-Id: "about nothing"',
      'mail for notification 999999, which is not in the outbox',
      `notification ${folded} was folded into a digest but also mailed 1 times`,
      `notification ${twice} delivered 2 times (+3.5 s, +3.5 s)`,
      `notification ${never} attempted 13 times (the limit is 12)`,
      `notification ${never} (failed, 13 attempts) never delivered`,
    ]);
  });
});

describe('checkExercised', () => {
  const all = {
    terminatedBackends: 40,
    postgresRestarts: 3,
    postgresOutages: 1,
    redisRestarts: 1,
    slowMails: 3,
    unansweredMails: 1,
    relaysAtSmtpFaults: 2,
    interrupted: false,
  };
  it('passes when every fault happened and met work', () => {
    expect(checkExercised(all)).toEqual([]);
  });
  it('catches a fault that did not happen or met nothing', () => {
    expect(
      checkExercised({
        ...all,
        postgresRestarts: 2,
        slowMails: 0,
        unansweredMails: 0,
        relaysAtSmtpFaults: 1,
        interrupted: true,
      }),
    ).toEqual([
      'the suite was interrupted',
      '(b) restarted PostgreSQL 2 times, not 3',
      '(d) began with 1 of 2 relays running',
      '(d) no mail was sent while SMTP was slow',
      '(d) no message was on its way while SMTP hung',
    ]);
  });
});
