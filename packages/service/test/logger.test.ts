// The service logger is a sink: no secret leaves through it and no line is unbounded (issue 12,
// items 6 and 9).
import { Writable } from 'node:stream';
import { NonRetryableError } from '@ccat/errors';
import { describe, expect, it } from 'vitest';
import { duplicateJsonKeys } from '@ccat/test-support';
import { createServiceLogger, MAX_LOG_LINE } from '../src/index.js';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createServiceLogger({ level: 'info', pretty: false }, { service: 'test' }, false, stream);
  return { logger, lines };
}

const SECRETS = ['HunterPw2', 'RedisPw9', 'Sup3rS3cret', 'xoxb-1111111111-SlackTok', 'FieldPw1', 'BindPw3'];
const MESSAGE =
  'failed: postgres://ccat:HunterPw2@db.example:5432/ops redis://:RedisPw9@r:6379 pass=Sup3rS3cret xoxb-1111111111-SlackTok';

describe('createServiceLogger', () => {
  it('redacts messages, error objects, fields at any depth and bindings', () => {
    const { logger, lines } = capture();
    const err = new NonRetryableError(MESSAGE, { context: { dsn: 'postgres://u:HunterPw2@h/db' } });
    logger.child({ dsn: 'redis://:BindPw3@r:1' }).error(
      {
        err,
        decision: 'permanent_failure',
        nested: { smtpPassword: 'FieldPw1', url: 'postgres://u:HunterPw2@h' },
      },
      `decision for ${MESSAGE}`,
    );
    logger.warn({ err: MESSAGE }, 'plain %s', MESSAGE);
    logger.info(MESSAGE);
    logger.error({ err: new Error('bad\u0000byte \ud800') }, 'nul \u0000 here');
    expect(lines).toHaveLength(4);
    for (const line of lines) {
      expect(line).not.toMatch(/\\u0000|\\ud800/i);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
      for (const s of SECRETS) expect(line, s).not.toContain(s);
    }
    const first = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(first['err']).toMatchObject({
      type: 'NonRetryableError',
      message: expect.stringContaining('[REDACTED]'),
    });
    expect(first['nested']).toEqual({ smtpPassword: '[REDACTED]', url: 'postgres://u:[REDACTED]@h' });
    expect(first['msg']).toContain('postgres://ccat:[REDACTED]@db.example:5432/ops');
  });

  it('writes each key once: a child or call-site field the bindings carry is dropped, or renamed when it differs', () => {
    const { logger, lines } = capture();
    const worker = logger.child({ service: 'test', workerId: 'w1' }).child({ workerId: 'w1', attempt: 1 });
    worker.info({ workerId: 'w1', attempt: 0, removed: 2 }, 'removed partial output');
    expect(lines.flatMap(duplicateJsonKeys)).toEqual([]);
    expect(JSON.parse(lines[0]!)).toMatchObject({ workerId: 'w1', attempt: 1, 'attempt#2': 0, removed: 2 });
  });

  it('bounds a 5 MB message and a 5 MB field, and every line', () => {
    const { logger, lines } = capture();
    const huge = `${'x'.repeat(5 * 1024 * 1024)} pass=Sup3rS3cret`;
    logger.error({ err: new Error(huge) }, huge);
    logger.info(
      { many: Array.from({ length: 50 }, () => ({ a: 'y'.repeat(8000), b: 'z'.repeat(8000) })) },
      'wide',
    );
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line.length).toBeLessThanOrEqual(MAX_LOG_LINE + 1000);
      expect(() => JSON.parse(line) as unknown).not.toThrow();
      expect(line).not.toContain('Sup3rS3cret');
    }
    expect(lines[0]).toContain('…[truncated');
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 30, lineTruncated: expect.any(Number) });
  });

  it('costs little per line', () => {
    const { logger, lines } = capture();
    const n = 2000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++)
      logger.info(
        { operationType: 'data_transfer', operationId: String(i), attempt: 1, decision: 'completed' },
        'operation completed',
      );
    const perLineUs = Number(process.hrtime.bigint() - start) / 1000 / n;
    expect(lines).toHaveLength(n);
    // Reported, not asserted: timing on a shared machine is not a test.
    console.log(`service logger: ${perLineUs.toFixed(1)} µs per ordinary line`);
  });
});
