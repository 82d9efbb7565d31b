// Configuration errors are a sink too (issue 12, item 7): a misspelt key beside a secret names the
// key, never the secret nor the object that holds it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError } from '@ccat/errors';
import { readServiceConfig } from '@ccat/service';
import { describe, expect, it } from 'vitest';
import { loadMonitorConfig } from '../src/config.js';

const SECRETS = {
  DATABASE_URL: 'postgres://ccat:EnvDbS3cret@db/ops',
  REDIS_URL: 'redis://:EnvRedisS3cret@r:6379',
  SLACK_TOKEN: 'xoxb-1111111111-EnvSlackS3cret',
  SMTP_PASSWORD: 'EnvSmtpS3cret',
};

function failure(load: () => unknown): string {
  try {
    load();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigurationError);
    const err = e as ConfigurationError;
    return `${err.message}\n${JSON.stringify(err.context)}\n${JSON.stringify(err.cause ?? null)}`;
  }
  throw new Error('expected a ConfigurationError');
}

describe('configuration errors print no secret', () => {
  it('monitor: misspelt keys beside the database URL, the Slack token and the SMTP password', () => {
    const text = failure(() =>
      loadMonitorConfig({
        file: {
          database: { poolsize: 4 },
          notifier: {
            slack: { chanel: '#ops' },
            email: { host: 'mx', port: 'twenty-five', auth: { user: 'ccat', passwrd: 'x' } },
          },
        },
        env: SECRETS,
      }),
    );
    expect(text).toContain('poolsize');
    expect(text).toContain('chanel');
    for (const s of ['EnvDbS3cret', 'EnvRedisS3cret', 'EnvSlackS3cret', 'EnvSmtpS3cret'])
      expect(text, s).not.toContain(s);
  });
});

describe('a config file that is not JSON', () => {
  it('is refused by position, without quoting the text around the error', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ccat-config-secrets-'));
    try {
      const file = join(dir, 'bad.json');
      await writeFile(file, '{"notifier": {"slack": {"token": FileS3cretTok}}}');
      const outcome = await readServiceConfig({
        name: 'ccat-test',
        usage: 'usage',
        argv: ['--config', file],
        env: {},
        load: (sources) => loadMonitorConfig(sources),
      });
      expect(outcome).toMatchObject({ exitCode: 2 });
      const stderr = 'stderr' in outcome ? (outcome.stderr ?? '') : '';
      expect(stderr).toContain('not valid JSON');
      expect(stderr).not.toContain('FileS3cret');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
