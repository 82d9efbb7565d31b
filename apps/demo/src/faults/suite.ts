// Over 300 lines: one scenario read top to bottom (four fault phases, then the checks); splitting it would scatter the story.
// The fault suite (`pnpm faults`): real worker and monitor processes, two of each, run the pipeline
// on a private PostgreSQL cluster and a private redis-server while the suite breaks what is around
// them: (a) every backend terminated every 250 ms for 10 s, (b) three fast PostgreSQL restarts and an
// 8 s outage, (c) a Redis restart, (d) a slow SMTP server, then one that hangs in the middle of a
// message, with both relays running. Then it asserts that no process exited on its own or logged a
// fatal line, that every operation is final and none completed twice, and that every notification
// was delivered exactly once. The shared PostgreSQL and Redis are never touched.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, type CcatDatabase } from '@ccat/db';
import { formatDuration, sleep } from '@ccat/errors';
import { PrivatePostgres, PrivateRedis, startSmtp, type TestSmtp } from '@ccat/test-support';
import { seedRawPackages, seedSites } from '@ccat/db/testing';
import { monitorConfig, workerConfig, type ConfigDocument, type DemoConnections } from '../configs.js';
import { childEnvironment, makeWorkDir } from '../environment.js';
import { checkCompletedOnce } from '../integrity.js';
import { readStats } from '../stats.js';
import { binScript } from '../bins.js';
import { Supervisor } from '../supervisor.js';
import { checkDeliveredOnce, checkExercised, checkExits, findFatalLines } from './checks.js';

/** The suite's size and timing; see {@link runFaultSuite}. */
export interface FaultSuiteOptions {
  /** Raw data packages seeded before the run and again before phases (a), (b) and (d). */
  readonly packagesPerWave: number;
  readonly filesPerPackage: number;
  /** The workers' fault-injection seed (transient and permanent errors, for notifications). */
  readonly seed: string;
  /** How long to wait, after the last fault, for every operation to be final (ms). */
  readonly settleTimeoutMs: number;
  /** The caller's environment: only what a process needs to run reaches the children. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: NodeJS.WritableStream;
  /** Aborted by SIGINT: the faults stop, everything is stopped and removed, the result is FAILED. */
  readonly signal: AbortSignal;
}

/** Outbox delivery attempts before a notification is marked failed (the suite's monitors' setting). */
const SUITE_MAX_ATTEMPTS = 30;

/**
 * The monitors' notifier: every level mailed to the local SMTP server, with the shipped defaults'
 * timing scaled down (connection 10 s, greeting 10 s, socket 30 s, relay lease 120 s in production;
 * here 1 s, 1 s, 2 s, 10 s): a 700 ms reply fits the socket timeout, a few slow mails in a row do
 * not fit the lease.
 */
function suiteMonitorConfig(c: DemoConnections, id: string): ConfigDocument {
  const base = monitorConfig(c, id);
  const notifier = base['notifier'] as ConfigDocument;
  return {
    ...base,
    notifier: {
      ...notifier,
      email: {
        ...(notifier['email'] as ConfigDocument),
        connectionTimeoutMs: 1000,
        greetingTimeoutMs: 1000,
        socketTimeoutMs: 2000,
      },
      routes: [{ email: ['data-ops@example.org'] }],
      retry: { maxAttempts: SUITE_MAX_ATTEMPTS, baseMs: 500, maxMs: 4000 },
      relay: { pollIntervalMs: 250, leaseMs: 10_000 },
    },
  };
}

/** Transient and permanent errors on first attempts, no crashes: a process that dies here is a finding. */
function suiteWorkerConfig(c: DemoConnections, id: string, seed: string): ConfigDocument {
  return {
    ...workerConfig(c, id, seed),
    faults: {
      enabled: true,
      seed,
      rules: [
        {
          kind: 'non_retryable',
          fraction: 0.2,
          operationTypes: ['raw_data_package'],
          attempts: [0],
          stage: 'start',
        },
        { kind: 'retryable', fraction: 0.15, attempts: [0], stage: 'middle' },
      ],
    },
  };
}

/** Retries `f` every 500 ms until it succeeds or `timeoutMs` passes (a service coming back). */
async function retrying<T>(what: string, timeoutMs: number, f: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await f();
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      await sleep(500);
    }
  }
}

/** Runs the suite; resolves with the exit code: 0 only when every assertion holds. */
export async function runFaultSuite(o: FaultSuiteOptions): Promise<number> {
  const t0 = Date.now();
  const stamp = () => `+${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s`;
  const say = (text: string) => o.out.write(`${stamp()}  ${text}\n`);
  const cleanups: (() => Promise<unknown>)[] = [];
  let passed = false;
  const counts = {
    terminatedBackends: 0,
    postgresRestarts: 0,
    postgresOutages: 0,
    redisRestarts: 0,
    slowMails: 0,
    relaysAtSmtpFaults: 0,
  };
  try {
    const postgres = await PrivatePostgres.start();
    cleanups.push(() => postgres.destroy());
    const redis = await PrivateRedis.start();
    cleanups.push(() => redis.stop());
    say(
      `private PostgreSQL on port ${postgres.port} (pid ${postgres.pid}), private redis-server on port ${redis.port} (pid ${redis.pid})`,
    );
    let database: CcatDatabase | undefined = createDatabase({
      connectionString: postgres.url,
      max: 2,
      applicationName: 'ccat-faults',
      onError: () => undefined, // its idle connections are terminated on purpose
    });
    const db = database.db;
    cleanups.push(async () => database?.close());
    await migrateToLatest(db);
    const work = await makeWorkDir();
    // Kept when an assertion fails: the processes' logs are the evidence.
    cleanups.push(async () => (passed ? work.remove() : say(`logs kept under ${work.path}`)));
    const smtp: TestSmtp = await startSmtp({ replyDelayMs: 0 });
    cleanups.push(() => smtp.close());
    const locations = await seedSites(db, join(work.path, 'data'));
    let wave = 0;
    const seedWave = async (packages = o.packagesPerWave) => {
      wave++;
      await retrying('seeding raw data packages', 30_000, () =>
        seedRawPackages(db, locations, {
          packages,
          filesPerPackage: o.filesPerPackage,
          minFileBytes: 2_000,
          maxFileBytes: 50_000,
          source: 'cha/primecam-raw',
          buffer: 'cha/cha-buffer',
          prefix: `wave-${wave}`,
        }),
      );
      say(`seeded wave ${wave}: ${packages} raw data packages of ${o.filesPerPackage} files`);
    };
    await seedWave();

    const conn: DemoConnections = {
      databaseUrl: postgres.url,
      redisUrl: redis.url,
      keyPrefix: 'ccat-faults:',
      smtpPort: smtp.port,
    };
    const supervisor = new Supervisor({
      dir: work.path,
      workerScript: binScript('ccat-worker'),
      monitorScript: binScript('ccat-monitor'),
      restartDelayMs: 1000,
      env: childEnvironment(o.env),
      onEvent: (text) => say(`! ${text}`),
    });
    cleanups.push(() => supervisor.close(10_000));
    for (const id of ['monitor-1', 'monitor-2'])
      await supervisor.start(id, 'monitor', suiteMonitorConfig(conn, id));
    for (const id of ['worker-1', 'worker-2'])
      await supervisor.start(id, 'worker', suiteWorkerConfig(conn, id, o.seed));
    say(`started monitor-1, monitor-2 (each with a relay) and worker-1, worker-2; logs under ${work.path}`);

    const progress = async (label: string) => {
      const s = await retrying('reading progress', 30_000, () => readStats(db));
      const done = Object.values(s.stages).reduce((n, c) => n + c.done, 0);
      const failed = Object.values(s.stages).reduce((n, c) => n + c.failed, 0);
      const n = s.notifications;
      say(
        `${label}: ${done} done, ${failed} failed, ${s.nonFinal} not final; notifications ${n['sent'] ?? 0} sent, ${n['pending'] ?? 0} pending, ${n['digested'] ?? 0} digested; ${smtp.mails.length} mails accepted; ${supervisor.alive} of 4 processes alive`,
      );
      return s;
    };
    // The pipeline is moving before anything breaks.
    for (let i = 0; i < 60 && !o.signal.aborted; i++) {
      const s = await readStats(db);
      if (Object.values(s.stages).some((c) => c.done > 0)) break;
      await sleep(1000, o.signal);
    }
    await progress('pipeline running');

    // (a) Every backend of the database terminated every 250 ms for 10 s.
    await seedWave();
    say('(a) terminating every backend of the database every 250 ms for 10 s');
    const aEnd = Date.now() + 10_000;
    let rounds = 0;
    while (Date.now() < aEnd && !o.signal.aborted) {
      counts.terminatedBackends += await postgres.terminateBackends('test').catch(() => 0);
      rounds++;
      await sleep(250, o.signal);
    }
    say(`(a) done: ${counts.terminatedBackends} backends terminated in ${rounds} rounds`);
    await sleep(3000, o.signal);
    await progress('after (a)');

    // (b) Three fast restarts, then an 8 s outage.
    await seedWave();
    for (let i = 1; i <= 3 && !o.signal.aborted; i++) {
      await postgres.restart();
      counts.postgresRestarts++;
      say(`(b) PostgreSQL restarted fast (${i} of 3), now pid ${postgres.pid}`);
      await sleep(4000, o.signal);
    }
    if (!o.signal.aborted) {
      await postgres.stop();
      counts.postgresOutages++;
      say('(b) PostgreSQL stopped for 8 s');
      await sleep(8000, o.signal);
      await postgres.spawn();
      say(`(b) PostgreSQL back, pid ${postgres.pid}`);
    }
    await sleep(3000, o.signal);
    await progress('after (b)');

    // (c) Redis restarted: every heartbeat, queue and job lost.
    if (!o.signal.aborted) {
      await redis.restart();
      counts.redisRestarts++;
      say(`(c) Redis restarted (every key lost), now pid ${redis.pid}`);
      await sleep(5000, o.signal);
      await progress('after (c)');
    }

    // (d) SMTP slow, then hanging in the middle of a message; a new wave of work each time keeps
    // notifications (permanent failures, digests) coming while it does.
    if (!o.signal.aborted) {
      counts.relaysAtSmtpFaults = supervisor.processes.filter(
        (p) => p.kind === 'monitor' && p.child.exitCode === null && p.child.signalCode === null,
      ).length;
      smtp.replyDelayMs = 700;
      const before = smtp.mails.length;
      say(
        `(d) SMTP slow: each reply after ${smtp.replyDelayMs} ms; ${supervisor.alive} of 4 processes alive`,
      );
      await seedWave();
      await sleep(20_000, o.signal);
      counts.slowMails = smtp.mails.length - before;
      smtp.replyDelayMs = 0;
      smtp.hangAfterData = true;
      say(
        `(d) SMTP hangs after DATA (the message is read, never answered); ${counts.slowMails} mails accepted while slow`,
      );
      await seedWave(o.packagesPerWave * 2);
      await sleep(15_000, o.signal);
      smtp.hangAfterData = false;
      say(`(d) SMTP normal again; ${smtp.unanswered.length} messages were left unanswered while it hung`);
    }

    // Settle: every operation final, then the workers stop and the relays empty the outbox.
    let quiet = 0;
    const settleEnd = Date.now() + o.settleTimeoutMs;
    while (quiet < 3 && Date.now() < settleEnd && !o.signal.aborted) {
      const s = await retrying('reading progress', 30_000, () => readStats(db));
      quiet = s.nonFinal === 0 && s.unbundled === 0 ? quiet + 1 : 0;
      await sleep(1000, o.signal);
    }
    await progress(quiet >= 3 ? 'every operation final' : 'settling timed out');
    await supervisor.stop('worker', 10_000);
    for (let i = 0; i < 60 && !o.signal.aborted; i++) {
      const pending = (await readStats(db)).notifications['pending'] ?? 0;
      if (pending === 0) break;
      await sleep(1000, o.signal);
    }
    await supervisor.stop('monitor', 10_000);
    say('workers and monitors stopped (SIGTERM)');

    // The assertions.
    const stats = await progress('final');
    const logs = await Promise.all(
      supervisor.processes.map(async (p) => ({
        name: p.name,
        text: await readFile(join(work.path, `${p.name}.log`), 'utf8').catch(() => ''),
      })),
    );
    const once = await checkCompletedOnce(db);
    const delivery = await checkDeliveredOnce(db, smtp.mails, SUITE_MAX_ATTEMPTS, t0);
    const checks: [string, string[]][] = [
      ['no process exited that the suite did not stop', checkExits(supervisor.exits, t0)],
      ['no process logged a fatal line', findFatalLines(logs)],
      [
        'every operation final',
        stats.nonFinal > 0 || stats.unbundled > 0
          ? [`${stats.nonFinal} operations not final, ${stats.unbundled} packages not bundled`]
          : [],
      ],
      [`no operation completed twice (${once.completions} completions)`, once.problems],
      [
        `every notification delivered exactly once (${delivery.deliveredOnce} of ${delivery.notifications - delivery.digested}; ${delivery.digested} in digests)`,
        delivery.problems,
      ],
      [
        'every fault happened and met work to disturb',
        checkExercised({ ...counts, unansweredMails: smtp.unanswered.length, interrupted: o.signal.aborted }),
      ],
    ];
    o.out.write('\n');
    let ok = true;
    for (const [label, problems] of checks) {
      o.out.write(`  ${problems.length === 0 ? '✓' : '✗'} ${label}\n`);
      for (const p of problems.slice(0, 12)) o.out.write(`      ${p}\n`);
      if (problems.length > 12) o.out.write(`      … and ${problems.length - 12} more\n`);
      if (problems.length > 0) ok = false;
    }
    const total = Object.values(stats.stages).reduce(
      (t, c) => ({ done: t.done + c.done, failed: t.failed + c.failed }),
      { done: 0, failed: 0 },
    );
    o.out.write(
      `\nfaults: ${total.done} operations completed, ${total.failed} failed, ${stats.nonFinal} not final; ${once.completions} completions; ${delivery.notifications} notifications, ${smtp.mails.length} mails, ${smtp.unanswered.length} unanswered; ${counts.terminatedBackends} backends terminated, ${counts.postgresRestarts} PostgreSQL restarts, ${counts.postgresOutages} outage, ${counts.redisRestarts} Redis restart; ${supervisor.exits.filter((e) => !e.requested).length} unexpected exits, ${supervisor.restarts} restarts; ${formatDuration(Date.now() - t0)}\n`,
    );
    o.out.write(`${ok ? 'RESULT: OK' : 'RESULT: FAILED'}\n`);
    await database.close();
    database = undefined;
    passed = ok;
    return ok ? 0 : 1;
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  }
}
