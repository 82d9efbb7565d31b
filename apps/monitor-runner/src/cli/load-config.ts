// The CLI's configuration: the monitor's own schema, read as the monitor reads it (@ccat/service's
// readConfigSources: defaults → file (--config or CCAT_CONFIG) → environment, NAME_FILE secrets);
// and the secrets of the environment, so even a configuration error cannot print them.
import { readConfigSources } from '@ccat/service';
import type { MonitorConfig } from '../config.js';
import { ConfigProblem } from './errors.js';
import { urlSecrets } from '@ccat/errors';

export type Env = Readonly<Record<string, string | undefined>>;

/** Secrets the environment holds (URL passwords, Redis passwords, SMTP password, Slack token), for scrubbing output. */
export function environmentSecrets(env: Env): string[] {
  const direct = [
    env['SMTP_PASSWORD'],
    env['SLACK_TOKEN'],
    env['REDIS_PASSWORD'],
    env['REDIS_SENTINEL_PASSWORD'],
  ].filter((s): s is string => (s?.length ?? 0) >= 3);
  return [...urlSecrets(env['DATABASE_URL'] ?? ''), ...urlSecrets(env['REDIS_URL'] ?? ''), ...direct];
}

/**
 * Loads the configuration, secrets named by `NAME_FILE` variables included, as the monitor does:
 * every problem is a ConfigProblem (exit 2) with one redacted message that never quotes the config
 * file's text. Variables the monitor leaves unread (another program's `CCAT_…` keys, Kubernetes
 * service links) are named, never their values, in one line passed to `warn`, as the monitor logs
 * them.
 */
export async function loadConfig(
  flag: string | undefined,
  env: Env,
  warn: (line: string) => void,
): Promise<Readonly<MonitorConfig>> {
  // Loaded here, not at the top: the config schema pulls in the notifier and recovery packages, the
  // larger part of start-up, which `--help` and a mistyped argument should not wait for.
  const { loadMonitorConfig, MONITOR_SECRET_FILES } = await import('../config.js');
  const loaded = await readConfigSources({
    fileName: flag ?? (env['CCAT_CONFIG'] || undefined),
    env,
    load: loadMonitorConfig,
    // DATABASE_URL_FILE and the other secret files, as the monitor reads them (in its pod, the CLI
    // finds the same mounted Secret).
    secretFiles: MONITOR_SECRET_FILES,
  });
  if ('problem' in loaded) throw new ConfigProblem(loaded.problem);
  if (loaded.ignored !== undefined) {
    const names = [...loaded.ignored.foreign, ...loaded.ignored.serviceLinks];
    warn(`environment variables that are not ccat-monitor configuration, ignored: ${names.join(', ')}`);
  }
  return loaded.config;
}
