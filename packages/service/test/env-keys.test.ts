// DESIGN §8: variables that are not ours are ignored (and reported once), never fatal; a misspelt
// key of our own still fails with its name.
import { ConfigurationError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  classifyEnvVariable,
  configFromEnv,
  envVarName,
  editDistance,
  isServiceLinkVariable,
  resolveConfig,
  schemaKeyPaths,
  type IgnoredVariables,
} from '../src/index.js';

const schema = z
  .strictObject({
    monitorId: z.string().optional(),
    concurrency: z.number().int().min(1).default(4),
    keyPrefix: z.string().default('ccat:'),
    http: z
      .strictObject({ host: z.string().default('127.0.0.1'), port: z.number().nullable().default(9465) })
      .prefault({}),
    shutdown: z.strictObject({ timeoutMs: z.number().default(8000) }).prefault({}),
    recovery: z
      .strictObject({
        operationTypes: z.record(z.string(), z.strictObject({ maxRetries: z.number() })).default({}),
      })
      .prefault({}),
  })
  .superRefine(() => undefined);

function resolve(env: Record<string, string>): {
  config: z.output<typeof schema>;
  ignored: IgnoredVariables[];
} {
  const ignored: IgnoredVariables[] = [];
  const config = resolveConfig(schema, { env, onIgnored: (i) => ignored.push(i) });
  return { config, ignored };
}

function failure(env: Record<string, string>): string {
  try {
    resolveConfig(schema, { env });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigurationError');
}

describe('Kubernetes service links', () => {
  it('recognises every variable Kubernetes injects for a Service named ccat-monitor', () => {
    for (const name of [
      'CCAT_MONITOR_SERVICE_HOST',
      'CCAT_MONITOR_SERVICE_PORT',
      'CCAT_MONITOR_SERVICE_PORT_METRICS',
      'CCAT_MONITOR_PORT',
      'CCAT_MONITOR_PORT_9465_TCP',
      'CCAT_MONITOR_PORT_9465_TCP_PROTO',
      'CCAT_MONITOR_PORT_9465_TCP_PORT',
      'CCAT_MONITOR_PORT_9465_TCP_ADDR',
      'CCAT_PORT',
    ])
      expect(isServiceLinkVariable(name), name).toBe(true);
    for (const name of [
      'CCAT_HTTP__PORT',
      'CCAT_KEY_PREFIX',
      'CCAT_MONITOR__LOOP_INTERVAL_MS',
      'CCAT_CONFIG',
    ])
      expect(isServiceLinkVariable(name), name).toBe(false);
  });

  it('are ignored, reported once, and the configuration is the one without them', () => {
    const { config, ignored } = resolve({
      CCAT_MONITOR_SERVICE_HOST: '10.0.0.7',
      CCAT_MONITOR_SERVICE_PORT: '9465',
      CCAT_MONITOR_PORT: 'tcp://10.0.0.7:9465',
      CCAT_MONITOR_PORT_9465_TCP: 'tcp://10.0.0.7:9465',
      CCAT_MONITOR_PORT_9465_TCP_ADDR: '10.0.0.7',
      CCAT_HTTP__HOST: '0.0.0.0',
    });
    expect(config.http).toEqual({ host: '0.0.0.0', port: 9465 });
    expect(ignored).toEqual([
      {
        foreign: [],
        serviceLinks: [
          'CCAT_MONITOR_PORT',
          'CCAT_MONITOR_PORT_9465_TCP',
          'CCAT_MONITOR_PORT_9465_TCP_ADDR',
          'CCAT_MONITOR_SERVICE_HOST',
          'CCAT_MONITOR_SERVICE_PORT',
        ],
      },
    ]);
  });
});

describe("another app's keys in a shared env file", () => {
  it('are ignored and reported once by name, at the top level and inside a shared section', () => {
    const { config, ignored } = resolve({
      // The worker's keys: sections the monitor does not have, and a key in a section both have.
      CCAT_DISPATCHER__ENABLED: 'false',
      CCAT_WORKER_ID: 'w-1',
      CCAT_TRANSPORT__KIND: 'command',
      CCAT_SHUTDOWN__GRACE_MS: '4000',
      CCAT_SHUTDOWN__TIMEOUT_MS: '5000',
    });
    expect(config.shutdown).toEqual({ timeoutMs: 5000 });
    expect(ignored).toEqual([
      {
        foreign: [
          'CCAT_DISPATCHER__ENABLED',
          'CCAT_SHUTDOWN__GRACE_MS',
          'CCAT_TRANSPORT__KIND',
          'CCAT_WORKER_ID',
        ],
        serviceLinks: [],
      },
    ]);
  });

  it('says nothing when every variable is read', () => {
    expect(resolve({ CCAT_CONCURRENCY: '3' }).ignored).toEqual([]);
  });
});

describe('a misspelt key of our own', () => {
  it.each([
    ['CCAT_CONCURENCY', 'concurency'],
    ['CCAT_KEYPREFIX', 'keyprefix'],
    ['CCAT_HTTP__PROT', 'prot'],
    ['CCAT_HTTP__HOTS', 'hots'],
    ['CCAT_SHUTDOWN__TIMEOUT', 'timeout'],
    ['CCAT_SHUTDWON__TIMEOUT_MS', 'shutdwon'],
    ['CCAT_MONITOR_IDD', 'monitorIdd'],
  ])('%s fails naming the variable', (name, key) => {
    const message = failure({ [name]: '1' });
    expect(message).toContain(`Unrecognized key: "${key}"`);
    expect(message).toContain(`(from ${name})`);
  });

  it('a service-link-shaped name that is a key of ours is still ours', () => {
    // The http section exists: CCAT_HTTP__PORT is ours and validated even though it ends in PORT.
    expect(failure({ CCAT_HTTP__PORT: '"x"' })).toMatch(/http\.port: .*\(from CCAT_HTTP__PORT\)/);
  });

  it('a path into a record or a scalar is validated as ours', () => {
    expect(
      classifyEnvVariable(schema, 'CCAT_RECOVERY__OPERATION_TYPES__X__MAX_RETRIES', [
        'recovery',
        'operationTypes',
        'x',
        'maxRetries',
      ]),
    ).toBe('ours');
    expect(failure({ CCAT_CONCURRENCY__MAX: '1' })).toContain('(from CCAT_CONCURRENCY__MAX)');
  });

  it('without a zod object schema nothing can be judged: every variable is ours', () => {
    expect(classifyEnvVariable({ safeParse: () => ({ success: true }) }, 'CCAT_ANYTHING', ['anything'])).toBe(
      'ours',
    );
  });
});

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and neighbour transpositions as one edit each', () => {
    expect(editDistance('port', 'port')).toBe(0);
    expect(editDistance('prot', 'port')).toBe(1);
    expect(editDistance('concurency', 'concurrency')).toBe(1);
    expect(editDistance('relay', 'redis')).toBe(3);
    expect(editDistance('', 'abc')).toBe(3);
  });
});

describe('schemaKeyPaths and envVarName', () => {
  it('list every key through wrappers, and name the variable that reads back to it', () => {
    const paths = schemaKeyPaths(schema);
    expect(paths).toContainEqual(['http', 'port']);
    expect(paths).toContainEqual(['recovery', 'operationTypes']);
    expect(paths).not.toContainEqual(['recovery', 'operationTypes', 'x']);
    for (const path of paths) {
      const name = envVarName(path);
      if (name === undefined) continue; // set through its enclosing object's variable, as JSON
      const value = path.join('.') === 'keyPrefix' ? 'p:' : '1';
      // The name reads back to the path: the variable is ours and lands where the path says.
      expect(classifyEnvVariable(schema, name, path), name).toBe('ours');
      expect(configFromEnv({ env: { [name]: value } }, schema), name).toHaveProperty(
        path,
        value === '1' ? 1 : value,
      );
    }
  });
});
