// Issue 15, item 3: the container image and the Kubernetes manifests hold to the apps' contract,
// checked on the manifests as `kubectl kustomize` renders them (offline) and on the Dockerfile. The
// expectations come from the apps themselves: each Deployment's environment is loaded with the app's
// own loader, probes and scrape annotations must name the port that configuration listens on, the
// grace must exceed the app's computed shutdown bound, and every `_FILE` variable must be one the
// app reads.
import type { IgnoredVariables } from '@ccat/service';
import { loadMonitorConfig, MONITOR_SECRET_FILES, monitorStopBounds } from '@ccat/monitor-runner';
import { loadWorkerConfig, WORKER_SECRET_FILES, workerStopBounds } from '@ccat/worker';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  dockerStages,
  dockerTarget,
  kustomize,
  REPO_ROOT,
  targetPackageDir,
  type K8sObject,
} from '@ccat/test-support';
import { describe, expect, it } from 'vitest';

interface Container {
  name: string;
  image: string;
  command?: unknown;
  args?: unknown;
  ports?: { name?: string; containerPort: number }[];
  env?: {
    name: string;
    value?: string;
    valueFrom?: { configMapKeyRef?: { name: string; key: string }; secretKeyRef?: unknown };
  }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: unknown }[];
  livenessProbe?: { httpGet?: { path: string; port: string | number } };
  readinessProbe?: { httpGet?: { path: string; port: string | number } };
  volumeMounts?: { name: string; mountPath: string }[];
}
interface PodSpec {
  enableServiceLinks?: boolean;
  terminationGracePeriodSeconds?: number;
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  containers: Container[];
  volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] } }[];
}
type Deployment = K8sObject & {
  spec: { template: { metadata: { annotations?: Record<string, string> }; spec: PodSpec } };
};

/** Kubernetes' default terminationGracePeriodSeconds. */
const KUBERNETES_DEFAULT_GRACE_S = 30;

/** Stand-ins for secrets an overlay does not render (the base has no Secret). */
const PLACEHOLDER_SECRETS: Record<string, string> = {
  DATABASE_URL: 'postgres://ccat:placeholder@postgres:5432/ccat',
  REDIS_URL: 'redis://:placeholder@redis:6379',
  SMTP_PASSWORD: 'placeholder',
  SLACK_TOKEN: 'xoxb-placeholder',
};

/** What the manifests are checked against, from an app's configuration as its loader reads it. */
interface AppContract {
  readonly http: { readonly host: string; readonly port: number | null };
  /** The whole shutdown's bound, ms from SIGTERM (the app's own computation). */
  readonly shutdownLimitMs: number;
  /** Where Redis is: one server, Sentinel or Cluster (whichever the configuration names). */
  readonly redis: {
    readonly url?: string | undefined;
    readonly sentinels?: readonly string[] | undefined;
    readonly cluster?: readonly string[] | undefined;
  };
}
type Loader = (env: Record<string, string>, onIgnored?: (i: IgnoredVariables) => void) => AppContract;

const loadWorker: Loader = (env, onIgnored) => {
  const c = loadWorkerConfig({ env, ...(onIgnored !== undefined && { onIgnored }) });
  return { http: c.http, shutdownLimitMs: workerStopBounds(c.shutdown).limitMs, redis: c.redis };
};
const loadMonitor: Loader = (env, onIgnored) => {
  const c = loadMonitorConfig({ env, ...(onIgnored !== undefined && { onIgnored }) });
  return { http: c.http, shutdownLimitMs: monitorStopBounds(c.shutdown).limitMs, redis: c.redis };
};

const APPS = [
  {
    deployment: 'ccat-worker',
    target: 'worker',
    package: '@ccat/worker',
    load: loadWorker,
    defaults: loadWorker({}),
    secretFiles: WORKER_SECRET_FILES as readonly string[],
  },
  {
    deployment: 'ccat-monitor',
    target: 'monitor',
    package: '@ccat/monitor-runner',
    load: loadMonitor,
    defaults: loadMonitor({}),
    secretFiles: MONITOR_SECRET_FILES as readonly string[],
  },
] as const;

/** The container's environment as the kubelet builds it: envFrom ConfigMaps, then env (later wins). */
function containerEnv(container: Container, objects: K8sObject[]): Record<string, string> {
  const configMap = (name: string) => {
    const found = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === name);
    if (found === undefined) throw new Error(`ConfigMap ${name} is referenced but not rendered`);
    return (found['data'] ?? {}) as Record<string, string>;
  };
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    expect(from.secretRef, 'secrets come as files (_FILE), never as environment').toBeUndefined();
    if (from.configMapRef !== undefined) Object.assign(env, configMap(from.configMapRef.name));
  }
  for (const e of container.env ?? []) {
    expect(e.valueFrom?.secretKeyRef, `${e.name}: secrets come as files (_FILE)`).toBeUndefined();
    const ref = e.valueFrom?.configMapKeyRef;
    const value = e.value ?? (ref !== undefined ? configMap(ref.name)[ref.key] : undefined);
    if (value !== undefined) env[e.name] = value;
  }
  return env;
}

/**
 * The Secret's key a `_FILE` path names, through the container's mounts of secret volumes; when the
 * Secret is rendered (an overlay), only a key it has (a missing one is a missing file: exit 2).
 */
function secretKeyAt(
  path: string,
  pod: PodSpec,
  container: Container,
  objects: K8sObject[],
): { secret: string; key: string } | undefined {
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === mount.name)?.secret;
    if (volume === undefined || !path.startsWith(`${mount.mountPath}/`)) continue;
    const file = path.slice(mount.mountPath.length + 1);
    const key = volume.items === undefined ? file : volume.items.find((i) => i.path === file)?.key;
    const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === volume.secretName);
    const provided = secret === undefined || Object.hasOwn(secret['data'] ?? {}, key ?? '');
    if (key !== undefined && provided) return { secret: volume.secretName, key };
  }
  return undefined;
}

/** A named or numbered container port as a number. */
function portNumber(port: string | number | undefined, container: Container): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

const OVERLAYS = ['example', 'redis-sentinel', 'redis-cluster'];
for (const dir of ['deploy/kubernetes/base', ...OVERLAYS.map((o) => `deploy/kubernetes/overlays/${o}`)]) {
  describe(`${dir} (kubectl kustomize)`, () => {
    const objects = kustomize(dir);

    for (const app of APPS) {
      describe(app.deployment, () => {
        const deployment = objects.find(
          (o) => o.kind === 'Deployment' && o.metadata.name === app.deployment,
        ) as Deployment | undefined;
        if (deployment === undefined) throw new Error(`${dir} renders no Deployment ${app.deployment}`);
        const pod = deployment.spec.template.spec;
        const container = pod.containers[0]!;
        const env = containerEnv(container, objects);
        // The secrets' values: the overlay's Secret as rendered, else stand-ins.
        const secretValue = (name: string, at: { secret: string; key: string }) => {
          const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === at.secret);
          const data = secret?.['data'] as Record<string, string> | undefined;
          return data?.[at.key] !== undefined
            ? Buffer.from(data[at.key]!, 'base64').toString('utf8').trim()
            : PLACEHOLDER_SECRETS[name]!;
        };
        const resolved: Record<string, string> = {};
        for (const [name, value] of Object.entries(env)) {
          if (!name.endsWith('_FILE')) resolved[name] = value;
          else {
            const at = secretKeyAt(value, pod, container, objects);
            if (at !== undefined)
              resolved[name.slice(0, -'_FILE'.length)] = secretValue(name.slice(0, -5), at);
          }
        }
        const ignored: IgnoredVariables[] = [];
        const config = app.load(resolved, (i) => ignored.push(i));

        it('its environment is a valid configuration of the app, every variable read', () => {
          expect(ignored).toEqual([]);
        });

        it('every _FILE variable is a secret the app reads from a file, at a mounted Secret key', () => {
          const fileVars = Object.keys(env).filter((n) => n.endsWith('_FILE'));
          expect(fileVars.length).toBeGreaterThanOrEqual(2);
          for (const name of fileVars) {
            expect(app.secretFiles, `${name}: not read by ${app.deployment}`).toContain(name.slice(0, -5));
            expect(
              secretKeyAt(env[name]!, pod, container, objects),
              `${name} names no mounted Secret key`,
            ).toBeDefined();
          }
          // The database and Redis URLs carry passwords: they come from files here, never as values.
          for (const name of app.secretFiles)
            expect(env, `${name} given as a value`).not.toHaveProperty(name);
          expect(env).toHaveProperty('DATABASE_URL_FILE');
          const { url, sentinels, cluster } = config.redis;
          expect(
            [url, sentinels, cluster].filter((r) => r !== undefined),
            'one Redis topology',
          ).toHaveLength(1);
          if (url !== undefined) expect(env).toHaveProperty('REDIS_URL_FILE');
        });

        it('probes and scrape annotations name the port the app listens on, on every interface', () => {
          expect(config.http.host).toBe('0.0.0.0');
          expect(config.http.port).toBe(app.defaults.http.port);
          expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
          expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
          expect(portNumber(container.livenessProbe?.httpGet?.port, container)).toBe(config.http.port);
          expect(portNumber(container.readinessProbe?.httpGet?.port, container)).toBe(config.http.port);
          const annotations = deployment.spec.template.metadata.annotations ?? {};
          expect(annotations['prometheus.io/scrape']).toBe('true');
          expect(annotations['prometheus.io/port']).toBe(String(config.http.port));
          expect(annotations['prometheus.io/path']).toBe('/metrics');
        });

        it("the termination grace exceeds the app's whole shutdown bound", () => {
          const graceMs = (pod.terminationGracePeriodSeconds ?? KUBERNETES_DEFAULT_GRACE_S) * 1000;
          const boundMs = config.shutdownLimitMs;
          expect(graceMs).toBeGreaterThan(boundMs);
          // And the shipped defaults fit Kubernetes' default grace and Docker's 10 s stop timeout.
          expect(app.defaults.shutdownLimitMs).toBeLessThan(10_000);
        });

        it('no service links, not root, and the image runs its own command', () => {
          expect(pod.enableServiceLinks).toBe(false);
          expect(pod.securityContext?.runAsNonRoot).toBe(true);
          expect(container.command).toBeUndefined();
          expect(container.args).toBeUndefined();
        });
      });
    }

    // A key mounted for one app and not the other made REDIS_PASSWORD_FILE stop the worker (ENOENT).
    it('worker and monitor mount the Secret the same way, whole', () => {
      const secretVolumes = APPS.map((app) => {
        const d = objects.find(
          (o) => o.kind === 'Deployment' && o.metadata.name === app.deployment,
        ) as Deployment;
        return d.spec.template.spec.volumes?.filter((v) => v.secret !== undefined);
      });
      expect(secretVolumes[0]).toEqual(secretVolumes[1]);
      for (const v of secretVolumes[0] ?? []) expect(v.secret?.items, `${v.name}: every key`).toBeUndefined();
    });

    it('a Service exposes the monitor on its HTTP port', () => {
      const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === 'ccat-monitor') as
        (K8sObject & { spec: { ports: { port: number; targetPort: string | number }[] } }) | undefined;
      expect(service).toBeDefined();
      const monitor = objects.find(
        (o) => o.kind === 'Deployment' && o.metadata.name === 'ccat-monitor',
      ) as Deployment;
      const container = monitor.spec.template.spec.containers[0]!;
      const ports = service!.spec.ports.map((p) => portNumber(p.targetPort, container));
      expect(ports).toContain(APPS[1].defaults.http.port);
    });
  });
}

describe('deploy/docker/Dockerfile', () => {
  const stages = dockerStages();
  for (const app of APPS) {
    it(`${app.target}: multi-stage, production dependencies through pnpm deploy, non-root, tini as PID 1`, () => {
      const target = dockerTarget(app.target, stages);
      const { pkg } = targetPackageDir(target, stages);
      expect(pkg).toBe(app.package);
      expect(
        stages
          .flatMap((s) => s.run)
          .some((r) => r.includes(`--filter ${pkg} deploy`) && r.includes('--prod')),
      ).toBe(true);
      // The runtime stage is not the build stage: no workspace, no dev dependencies.
      expect(target.run.some((r) => r.includes('pnpm'))).toBe(false);
      expect(target.user).toMatch(/^[1-9][0-9]*(:[0-9]+)?$/);
      expect(target.entrypoint).toEqual(['/usr/bin/tini', '--']);
      expect(target.cmd?.[0]).toBe('node');
      expect(target.expose).toEqual([app.defaults.http.port]);
      expect(target.env['CCAT_HTTP__HOST']).toBe('0.0.0.0');
    });
  }
});

// docs/deploy.md shows how to switch to Sentinel or Cluster with the overlays' own files, verbatim:
// what the docs say is what the contract tests above render.
describe('docs/deploy.md: Redis Sentinel or Cluster', () => {
  const doc = readFileSync(join(REPO_ROOT, 'docs/deploy.md'), 'utf8');
  for (const overlay of ['redis-sentinel', 'redis-cluster'])
    for (const file of ['kustomization.yaml', 'redis-env.yaml'])
      it(`shows deploy/kubernetes/overlays/${overlay}/${file} as it is`, () => {
        const text = readFileSync(join(REPO_ROOT, 'deploy/kubernetes/overlays', overlay, file), 'utf8');
        expect(doc).toContain(`\`\`\`yaml\n# deploy/kubernetes/overlays/${overlay}/${file}\n${text}\`\`\``);
      });
});
