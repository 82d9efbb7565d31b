// The metrics every CCAT service process exports besides its own: Node.js process metrics under
// their standard names, one build-info series, and an `app` label on every series of the registry.
import { Gauge, collectDefaultMetrics, type Registry } from 'prom-client';

/** Who is exporting: the `app` label value and the version of its package. */
export interface ServiceMetricsIdentity {
  /** The program name, e.g. `ccat-worker`: the `app` label on every series of the registry. */
  readonly app: string;
  /** The app package's version (semver), exported as `ccat_build_info{version}`. */
  readonly version: string;
}

/**
 * Adds to `registry`: prom-client's default Node.js metrics under their standard names, without an
 * app prefix (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `nodejs_heap_size_used_bytes`,
 * … as in prom-client's README and the community Node.js dashboards, e.g. Grafana 11159), and
 * `ccat_build_info{version,app,node_version} 1`. Sets the default label `app` on every series of
 * the registry, so two apps scraped by one job stay apart. Call once per registry: a second call
 * throws prom-client's "already registered" error.
 */
export function registerServiceMetrics(registry: Registry, identity: ServiceMetricsIdentity): void {
  registry.setDefaultLabels({ app: identity.app });
  collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: 'ccat_build_info',
    help: 'Always 1; its labels say which version of which app runs on which Node.js',
    labelNames: ['version', 'node_version'] as const,
    registers: [registry],
  });
  info.set({ version: identity.version, node_version: process.versions.node }, 1);
}

/**
 * Sets every combination of the given label values to 0 on a counter or gauge (`inc(labels, 0)`), or
 * on a histogram or summary (`zero(labels)`: count, sum and every bucket at 0), so each series exists
 * from start (a rate() or an absent() alert needs it) rather than after its first event.
 * `values` maps each label name to its known values; the product of the lists is initialised.
 */
export function initialiseLabels<L extends string>(
  metric:
    | { inc(labels: NoInfer<Partial<Record<L, string>>>, value: number): void }
    | { zero(labels: NoInfer<Partial<Record<L, string>>>): void },
  values: Readonly<Record<L, readonly string[]>>,
): void {
  let combos: Partial<Record<L, string>>[] = [{}];
  for (const name of Object.keys(values) as L[]) {
    combos = combos.flatMap((c) => values[name].map((v) => ({ ...c, [name]: v })));
  }
  for (const labels of combos) {
    if ('inc' in metric) metric.inc(labels, 0);
    else metric.zero(labels);
  }
}
