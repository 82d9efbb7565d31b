// The main job, end to end: a synthetic night of observations through the whole pipeline, with
// faults injected and recovered, workers and a monitor as real processes, live progress, and a
// report that ends with an integrity check. With `chaos`, the run is also disturbed (chaos.ts) and
// the soak's assertions decide the exit code.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, type Database } from '@ccat/db';
import { formatDuration, redactSecrets, sleep } from '@ccat/errors';
import { seedRawPackages, seedSites } from '@ccat/db/testing';
import { PrivateRedis, startSmtp } from '@ccat/test-support';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import { runChaos, type ChaosLog } from './chaos.js';
import { monitorConfig, workerConfig, type ConfigDocument, type DemoConnections } from './configs.js';
import {
  childEnvironment,
  createDemoDatabase,
  ignoredCallerVariables,
  dropConnections,
  makeWorkDir,
} from './environment.js';
import { checkCompletedOnce, checkFailuresNotified, checkIntegrity } from './integrity.js';
import { createProgressPrinter, renderProgress, summaryLine } from './progress.js';
import { printReport } from './report.js';
import { readStats } from './stats.js';
import { binScript } from './bins.js';
import { Supervisor } from './supervisor.js';

export interface DemoOptions {
  readonly packages: number;
  readonly filesPerPackage: number;
  readonly workers: number;
  readonly chaos: boolean;
  readonly timeoutMs: number;
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly keep: boolean;
  readonly seed: string;
  readonly slackChannel?: string;
  /**
   * The caller's environment. Only what a process needs to run (`childEnvironment`) reaches the
   * demo's workers and monitor, plus SLACK_TOKEN when `slackChannel` is set; their configuration is
   * their config file alone, so they touch only what the demo created.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: NodeJS.WriteStream;
  /** Aborted by the first SIGINT: stop early, clean up, report what there is. */
  readonly signal: AbortSignal;
  /** The workers' fault injection (default: the fault mix of configs.ts); `--night` plans its own. */
  readonly faults?: ConfigDocument;
  /**
   * Runs on the demo's database once every operation is final and the processes stopped, before
   * anything is dropped, with how long the night took (workers started → every operation final, ms).
   * False fails the run.
   */
  readonly afterNight?: (db: Kysely<Database>, nightMs: number) => Promise<boolean>;
}

/** Runs the demo; resolves with the process exit code (0: every operation final and every check holds). */
export async function runDemo(o: DemoOptions): Promise<number> {
  const say = (text = '') => o.out.write(`${text}\n`);
  const started = Date.now();
  say(
    `ccat-recovery demo${o.chaos ? ' — chaos soak' : ''}: ${o.packages} raw data packages of ${o.filesPerPackage} files, ${o.workers} workers, 1 monitor (fault seed ${o.seed})`,
  );
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const database = await createDemoDatabase(o.databaseUrl);
    if (!o.keep) cleanups.push(() => database.drop());
    say(`  database ${database.name} on ${redactSecrets(o.databaseUrl)}`);
    const db = createDatabase({ connectionString: database.url, max: 4, applicationName: 'ccat-demo' });
    cleanups.push(() => db.close());
    await migrateToLatest(db.db);

    let privateRedis: PrivateRedis | undefined;
    let redisUrl = o.redisUrl;
    if (o.chaos) {
      privateRedis = await PrivateRedis.start();
      cleanups.push(() => privateRedis!.stop());
      redisUrl = privateRedis.url;
      say(`  a private redis-server at ${redisUrl} (the soak restarts it)`);
    }
    const keyPrefix = `ccat-demo-${randomBytes(3).toString('hex')}:`;
    const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true });
    redis.on('error', () => undefined);
    await redis.connect();
    cleanups.push(async () => {
      if (!o.keep) {
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length > 0) await redis.unlink(...keys);
        } while (cursor !== '0');
      }
      redis.disconnect();
    });
    say(`  Redis ${redactSecrets(redisUrl)}, key prefix ${keyPrefix}`);

    const work = await makeWorkDir();
    if (!o.keep) cleanups.push(() => work.remove());
    const smtp = await startSmtp();
    cleanups.push(() => smtp.close());
    say(`  data locations and logs under ${work.path}; a local SMTP server on 127.0.0.1:${smtp.port}`);

    const locations = await seedSites(db.db, join(work.path, 'data'));
    await seedRawPackages(db.db, locations, {
      packages: o.packages,
      filesPerPackage: o.filesPerPackage,
      minFileBytes: 2_000,
      maxFileBytes: 200_000,
      source: 'cha/primecam-raw',
      buffer: 'cha/cha-buffer',
      prefix: `obs-${new Date().toISOString().slice(0, 10)}`,
    });
    say(
      `  seeded ${o.packages} packages at Chajnantor (source → buffer), to be transferred to Cologne, unpacked, archived, and deleted at the source`,
    );

    const conn: DemoConnections = {
      databaseUrl: database.url,
      redisUrl,
      keyPrefix,
      smtpPort: smtp.port,
      ...(o.slackChannel !== undefined && { slackChannel: o.slackChannel }),
    };
    const printer = createProgressPrinter(o.out);
    let lastEvent: string | undefined;
    const note = (text: string) => {
      lastEvent = text;
      printer.note(text);
    };
    const slackToken = o.slackChannel !== undefined ? o.env['SLACK_TOKEN'] : undefined;
    const ignored = ignoredCallerVariables(o.env).filter((k) => !(k === 'SLACK_TOKEN' && slackToken));
    if (ignored.length > 0)
      say(
        `  the demo's processes are configured by their own files only; ignored from your environment: ${ignored.join(', ')}`,
      );
    const supervisor = new Supervisor({
      dir: work.path,
      env: childEnvironment(o.env, slackToken !== undefined ? { SLACK_TOKEN: slackToken } : {}),
      workerScript: binScript('ccat-worker'),
      monitorScript: binScript('ccat-monitor'),
      restartDelayMs: 1000,
      onEvent: note,
    });
    cleanups.push(() => supervisor.close(8000));
    await supervisor.start('monitor-1', 'monitor', monitorConfig(conn, 'monitor-1'));
    for (let i = 1; i <= o.workers; i++)
      await supervisor.start(`worker-${i}`, 'worker', workerConfig(conn, `worker-${i}`, o.seed, o.faults));
    const nightStarted = Date.now();
    say(
      `  started monitor-1 and ${o.workers} workers; faults: transient and permanent errors, crashes, freezes and hangs`,
    );
    say();

    const chaosStop = new AbortController();
    const chaos: Promise<ChaosLog | undefined> =
      o.chaos && privateRedis
        ? runChaos(
            {
              supervisor,
              redis: privateRedis,
              smtp,
              note,
              dropConnections: () => dropConnections(o.databaseUrl, database.name),
            },
            45_000,
            chaosStop.signal,
          )
        : Promise.resolve(undefined);

    // Until every operation is final and nothing waits to be bundled, three checks in a row.
    let quiet = 0;
    let timedOut = false;
    for (;;) {
      const stats = await readStats(db.db);
      const extras = {
        elapsedMs: Date.now() - started,
        mails: smtp.mails.length,
        workersAlive: supervisor.alive - 1,
        restarts: supervisor.restarts,
        ...(lastEvent !== undefined && { lastEvent }),
      };
      printer.frame(renderProgress(stats, extras), summaryLine(stats, extras));
      quiet = stats.nonFinal === 0 && stats.unbundled === 0 ? quiet + 1 : 0;
      if (quiet >= 3 || o.signal.aborted) break;
      if (Date.now() - started > o.timeoutMs) {
        timedOut = true;
        break;
      }
      await sleep(1000, o.signal);
    }
    const nightMs = Date.now() - nightStarted;
    chaosStop.abort();
    const chaosLog = await chaos;
    printer.done();
    say();
    say(
      timedOut
        ? `timed out after ${formatDuration(o.timeoutMs)} with operations not final`
        : 'every operation is final; stopping the workers',
    );
    await supervisor.stop('worker', 8000);
    // Let the relay deliver what is still in the outbox (retries after the SMTP outage included).
    for (let i = 0; i < 60 && !o.signal.aborted; i++) {
      const n = (await readStats(db.db)).notifications['pending'] ?? 0;
      if (n === 0) break;
      await sleep(1000, o.signal);
    }
    await supervisor.stop('monitor', 8000);

    const stats = await readStats(db.db);
    const integrity = await checkIntegrity(db.db);
    const once = await checkCompletedOnce(db.db);
    const notified = await checkFailuresNotified(db.db);
    const ok = printReport(say, {
      stats,
      integrity,
      once,
      notified,
      mails: smtp.mails,
      chaos: chaosLog,
      restarts: supervisor.restarts,
      elapsedMs: Date.now() - started,
      strict: o.chaos,
      timedOut,
    });
    const after = o.afterNight === undefined ? true : await o.afterNight(db.db, nightMs);
    return ok && after ? 0 : 1;
  } finally {
    await cleanup();
  }
}
