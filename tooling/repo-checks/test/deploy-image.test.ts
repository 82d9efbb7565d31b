// Issue 15, item 3: a process started exactly as the image starts it — the target's CMD in its
// WORKDIR (here the app's package directory, which `pnpm deploy` copies to /app), the image's ENV and
// the Deployment's kind of environment only (no config file; the URLs from _FILE secrets; Kubernetes
// service links and the other app's keys present, as a shared env file would put them) — passes its
// readiness probe and stops on SIGTERM with exit 0 within Kubernetes' default grace.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTestDatabase, type TestDatabase } from '@ccat/db/testing';
import { loadMonitorConfig, monitorStopBounds } from '@ccat/monitor-runner';
import {
  connectTestRedis,
  deleteKeysWithPrefix,
  freePort,
  startJsonProcess,
  testRedisUrl,
  uniquePrefix,
  waitFor,
  type JsonProcess,
  dockerStages,
  dockerTarget,
  targetPackageDir,
  REPO_ROOT,
} from '@ccat/test-support';
import { loadWorkerConfig, workerStopBounds } from '@ccat/worker';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** Kubernetes' default terminationGracePeriodSeconds, in ms: the SIGKILL comes after this. */
const KUBERNETES_DEFAULT_GRACE_MS = 30_000;

let schema: TestDatabase;
let redis: Redis;
let dir: string;
const prefixes: string[] = [];
const processes: JsonProcess[] = [];

beforeAll(async () => {
  schema = await createTestDatabase('deploy_image', { max: 1 });
  redis = await connectTestRedis();
  dir = await mkdtemp(join(tmpdir(), 'ccat-image-'));
});
afterAll(async () => {
  for (const p of processes) {
    p.signal('SIGKILL');
    await p.exited;
  }
  for (const p of prefixes) await deleteKeysWithPrefix(redis, p);
  redis?.disconnect();
  await schema?.close();
  await rm(dir, { recursive: true, force: true });
});

const APPS = [
  {
    target: 'worker',
    started: 'worker started',
    bound: () => workerStopBounds(loadWorkerConfig({ env: {} }).shutdown).limitMs,
    // A key only the monitor has, as a shared env file holds it.
    otherAppsKey: 'CCAT_NOTIFIER__RELAY__BATCH_SIZE',
  },
  {
    target: 'monitor',
    started: 'monitor started',
    bound: () => monitorStopBounds(loadMonitorConfig({ env: {} }).shutdown).limitMs,
    otherAppsKey: 'CCAT_DISPATCHER__BUNDLE_SIZE',
  },
] as const;

describe('a process started as the image starts it', () => {
  const stages = dockerStages();
  for (const app of APPS) {
    it(`${app.target}: env only, /readyz 200, then SIGTERM → exit 0 within the default grace`, async () => {
      const target = dockerTarget(app.target, stages);
      const { dir: appDir } = targetPackageDir(target, stages);
      const [command, script, ...args] = target.cmd ?? [];
      expect(command).toBe('node');
      const prefix = uniquePrefix(`image-${app.target}`);
      prefixes.push(prefix);
      const secrets = join(dir, app.target);
      await writeFile(`${secrets}-database-url`, `${schema.url}\n`);
      await writeFile(`${secrets}-redis-url`, `${testRedisUrl()}\n`);
      const port = await freePort();
      const p = await startJsonProcess({
        name: app.target,
        script: script!,
        args,
        cwd: appDir,
        inheritEnv: false,
        env: {
          // The node image's PATH; node itself is started by its absolute path.
          PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
          HOME: dir,
          ...target.env,
          CCAT_HTTP__PORT: String(port),
          CCAT_KEY_PREFIX: prefix,
          DATABASE_SCHEMA: schema.schema,
          DATABASE_URL_FILE: `${secrets}-database-url`,
          REDIS_URL_FILE: `${secrets}-redis-url`,
          CCAT_MONITOR_SERVICE_HOST: '10.0.0.7',
          CCAT_MONITOR_PORT: 'tcp://10.0.0.7:9465',
          CCAT_MONITOR_PORT_9465_TCP_ADDR: '10.0.0.7',
          [app.otherAppsKey]: '7',
        },
        ready: (l) => l['msg'] === app.started,
        readyTimeoutMs: 60_000,
      });
      processes.push(p);
      // The image listens on every interface (CCAT_HTTP__HOST from its ENV), so loopback answers too.
      await waitFor(
        async () =>
          (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5000) }).then(
            (r) => r.status,
            () => 0,
          )) === 200,
        { timeoutMs: 30_000, message: `${app.target} /readyz 200` },
      );
      const warnings = p.lines.filter((l) => String(l['msg']).includes('configuration: ignored'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({
        variables: [app.otherAppsKey],
        kubernetesServiceLinks: [
          'CCAT_MONITOR_PORT',
          'CCAT_MONITOR_PORT_9465_TCP_ADDR',
          'CCAT_MONITOR_SERVICE_HOST',
        ],
      });
      const begun = Date.now();
      p.signal('SIGTERM');
      const code = await Promise.race([
        p.exited,
        new Promise((r) => setTimeout(() => r('still running'), KUBERNETES_DEFAULT_GRACE_MS)),
      ]);
      const tookMs = Date.now() - begun;
      expect(code, `exit after ${tookMs} ms; stderr: ${p.stderr()}`).toBe(0);
      expect(tookMs).toBeLessThan(app.bound());
      expect(p.lines.filter((l) => l['level'] === 60 || l['level'] === 'fatal')).toEqual([]);
    }, 120_000);
  }

  // issue 15 (deployment): the worker refuses to start when transport.command's program is missing,
  // so the image holds the program of the example the docs give.
  it('worker: the program of the documented transport.command example is installed in the image', () => {
    const doc = readFileSync(join(REPO_ROOT, 'docs/configuration.md'), 'utf8');
    const example = /`transport\.command`.*?e\.g\. `\[\s*"([^"]+)"/.exec(doc)?.[1];
    expect(example).toBe('rsync');
    const installs = dockerTarget('worker', stages)
      .run.flatMap((r) => r.split('&&'))
      .map((c) => /apt-get install (.*)$/.exec(c.trim())?.[1]?.split(/\s+/) ?? [])
      .flat();
    expect(installs).toContain(example);
  });
});
