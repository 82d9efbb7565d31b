// A service's command line and configuration sources read into a validated configuration, or an exit.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { redactSecrets } from '@ccat/errors';
import type { IgnoredVariables } from './env-keys.js';

/**
 * Validates a configuration from its sources (file, its name, the environment); throws
 * `ConfigurationError`. Calls `onIgnored` (at most once) with the variables it left unread.
 */
export type ConfigLoader<C> = (sources: {
  file?: unknown;
  fileName?: string;
  env: Record<string, string | undefined>;
  onIgnored?: (ignored: IgnoredVariables) => void;
}) => C;

/**
 * What a service's command line and configuration sources came to: a configuration (and the
 * variables left unread, for one warning once a logger exists), or an exit.
 */
export type ConfigOutcome<C> =
  | { readonly config: C; readonly ignored?: IgnoredVariables }
  | { readonly exitCode: number; readonly stdout?: string; readonly stderr?: string };

/** Exit 2 with a message for stderr, passed through the one redactor like everything a service prints. */
function failed(message: string): { readonly exitCode: number; readonly stderr: string } {
  return { exitCode: 2, stderr: redactSecrets(message, 20_000) };
}

/** Why a file could not be read, without its path: the system's code (ENOENT, EACCES, EISDIR…). */
function fileErrorReason(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]{1,20}$/.test(code) ? code : 'unreadable';
}

/**
 * The environment with each secret in `names` read from the file its `NAME_FILE` variable names
 * (Docker and Kubernetes secrets mounted as files), trailing whitespace trimmed; a `NAME` set
 * directly wins over its file. An unreadable file comes back as a `problem` naming the variable and
 * the system's reason code (ENOENT, EACCES…), never the path: a secret put in NAME_FILE by mistake
 * would be printed.
 */
export async function readSecretFiles(
  source: Readonly<Record<string, string | undefined>>,
  names: readonly string[],
): Promise<{ readonly env: Record<string, string | undefined> } | { readonly problem: string }> {
  const env: Record<string, string | undefined> = { ...source };
  for (const name of names) {
    const path = env[`${name}_FILE`];
    if (path === undefined || env[name] !== undefined) continue;
    try {
      env[name] = (await readFile(path, 'utf8')).trim();
    } catch (e) {
      return { problem: `cannot read the secret file that ${name}_FILE names (${fileErrorReason(e)})` };
    }
  }
  return { env };
}

/**
 * Reads a configuration from its sources: the secrets in `secretFiles` from the files their
 * `NAME_FILE` variables name, the JSON file `fileName` (when given) and the environment, validated
 * by `load`. A problem comes back as one message, redacted, that never quotes the file's text (a
 * JSON syntax error is named by its position) nor a secret file's path or content. `ignored` lists
 * the variables left unread (another program's, Kubernetes service links), names only.
 */
export async function readConfigSources<C>(o: {
  readonly fileName?: string | undefined;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly load: ConfigLoader<C>;
  readonly secretFiles?: readonly string[];
}): Promise<{ readonly config: C; readonly ignored?: IgnoredVariables } | { readonly problem: string }> {
  const problem = (message: string) => ({ problem: redactSecrets(message, 20_000) });
  const secrets = await readSecretFiles(o.env, o.secretFiles ?? []);
  if ('problem' in secrets) return problem(secrets.problem);
  const { env } = secrets;
  const { fileName } = o;
  let file: unknown;
  if (fileName !== undefined) {
    try {
      file = JSON.parse(await readFile(fileName, 'utf8'));
    } catch (e) {
      // JSON.parse quotes the text around a syntax error, which may be a secret: say where, not what.
      const why =
        e instanceof SyntaxError
          ? `not valid JSON${/ at position \d+(?: \(line \d+ column \d+\))?/.exec(e.message)?.[0] ?? ''}`
          : redactSecrets((e as Error).message, 500);
      return problem(`cannot read the config file ${fileName}: ${why}`);
    }
  }
  try {
    let ignored: IgnoredVariables | undefined;
    const config = o.load({
      file,
      ...(fileName !== undefined && { fileName }),
      env,
      onIgnored: (i) => (ignored = i),
    });
    return { config, ...(ignored !== undefined && { ignored }) };
  } catch (e) {
    // A ConfigurationError names keys, never secrets; anything else is redacted all the same.
    return problem((e as Error).message);
  }
}

/**
 * Reads `--config file.json` (or CCAT_CONFIG) and the environment into a validated configuration
 * (`readConfigSources`). Secrets named in `secretFiles` may come from files
 * (`NAME_FILE=/run/secrets/name`). Bad arguments, an unreadable file or invalid configuration come
 * back as exit 2 with the message to print: every message is redacted, and a secret file is named by
 * its variable, never by its path or content.
 */
export async function readServiceConfig<C>(o: {
  readonly name: string;
  readonly usage: string;
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly load: ConfigLoader<C>;
  readonly secretFiles?: readonly string[];
}): Promise<ConfigOutcome<C>> {
  let args;
  try {
    args = parseArgs({
      args: [...o.argv],
      options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    });
  } catch (e) {
    // parseArgs quotes the argument it refused, which may be `--password=…`.
    return failed(`${o.name}: ${(e as Error).message}\n${o.usage}`);
  }
  if (args.values.help === true) return { exitCode: 0, stdout: o.usage };
  const loaded = await readConfigSources({
    fileName: args.values.config ?? (o.env['CCAT_CONFIG'] || undefined),
    env: o.env,
    load: o.load,
    ...(o.secretFiles !== undefined && { secretFiles: o.secretFiles }),
  });
  return 'problem' in loaded ? failed(`${o.name}: ${loaded.problem}`) : loaded;
}
