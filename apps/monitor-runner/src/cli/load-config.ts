// The CLI's configuration: the monitor's own schema, from defaults → file (--config or CCAT_CONFIG)
// → environment; and the secrets of the environment, so even a configuration error cannot print them.
import { readFile } from 'node:fs/promises';
import { classifyError } from '@ccat/errors';
import { readSecretFiles } from '@ccat/service';
import type { MonitorConfig } from '../config.js';
import { ConfigProblem } from './errors.js';
import { urlSecrets } from './redact.js';

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
 * Loads the configuration, secrets named by `NAME_FILE` variables included; every problem is a
 * ConfigProblem (exit 2) with one readable message.
 */
export async function loadConfig(flag: string | undefined, env: Env): Promise<Readonly<MonitorConfig>> {
  const fileName = flag ?? (env['CCAT_CONFIG'] || undefined);
  let file: unknown;
  if (fileName !== undefined) {
    let text: string;
    try {
      text = await readFile(fileName, 'utf8');
    } catch (e) {
      throw new ConfigProblem(`cannot read the config file ${fileName}: ${classifyError(e).message}`);
    }
    try {
      file = JSON.parse(text);
    } catch (e) {
      throw new ConfigProblem(`the config file ${fileName} is not valid JSON: ${(e as Error).message}`);
    }
  }
  // Loaded here, not at the top: the config schema pulls in the notifier and recovery packages, the
  // larger part of start-up, which `--help` and a mistyped argument should not wait for.
  const { loadMonitorConfig, MONITOR_SECRET_FILES } = await import('../config.js');
  // DATABASE_URL_FILE and the other secret files, as the monitor reads them (in its pod, the CLI
  // finds the same mounted Secret).
  const secrets = await readSecretFiles(env, MONITOR_SECRET_FILES);
  if ('problem' in secrets) throw new ConfigProblem(secrets.problem);
  try {
    return loadMonitorConfig({ file, ...(fileName !== undefined && { fileName }), env: secrets.env });
  } catch (e) {
    throw new ConfigProblem(classifyError(e).message);
  }
}
