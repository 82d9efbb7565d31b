// The runbook's `jq` recipe for one operation's story, run with jq on a real notification line: the
// service logger (redaction, dedup of bound keys) writing what the log channel logs for a failure.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { createLogChannel, notificationFor } from '@ccat/notifier';
import { createServiceLogger } from '@ccat/service';
import { describe, expect, it } from 'vitest';

const runbook = readFileSync(new URL('../../../docs/runbook.md', import.meta.url), 'utf8');

describe("the runbook's jq recipe", () => {
  it('finds the failure notification of the operation it names, each key once', async () => {
    const recipe = /^jq -c '(select\(\.operationType == "(\w+)" and \.operationId == "(\d+)"\))'/m.exec(
      runbook,
    );
    expect(recipe).not.toBeNull();
    const [, filter, type, id] = recipe!;
    const lines: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    const logger = createServiceLogger(
      { level: 'info', pretty: false },
      { service: 'ccat-monitor', monitorId: 'm-1' },
      false,
      out,
    );
    const channel = createLogChannel({ logger });
    await channel.deliver(
      {
        notification: notificationFor({
          eventKind: 'permanent_failure',
          subject: `${type} ${id} failed`,
          operation: { type: type as 'data_transfer', id: id!, attempt: 2 },
          error: { code: 'CHECKSUM_MISMATCH' },
        }),
      },
      [],
    );
    await channel.deliver(
      {
        notification: notificationFor({
          eventKind: 'permanent_failure',
          subject: 'another',
          operation: { type: 'deletion', id: '7', attempt: 0 },
        }),
      },
      [],
    );
    expect(lines).toHaveLength(2);
    for (const line of lines)
      for (const key of ['operationType', 'operationId', 'attempt'])
        expect(line.split(`"${key}":`).length - 1, `${key} in ${line}`).toBe(1);
    const found = execFileSync('jq', ['-c', filter!], { input: lines.join('\n') })
      .toString()
      .trim()
      .split('\n');
    expect(found).toHaveLength(1);
    expect(JSON.parse(found[0]!)).toMatchObject({
      msg: `${type} ${id} failed`,
      operationType: type,
      operationId: id,
      attempt: 2,
    });
  });
});
