// bench/redact: the one redactor on the text of a stall's records (issue 13 item 3), per text:
// redactSecrets (built-in patterns behind the trigger test) beside the same patterns run ungated
// (createRedactor with them as extra patterns, which always run: the redactor before the fast path),
// in the same run, on text without a secret (the common case) and on text with one.
import { createRedactor, DEFAULT_SECRET_PATTERNS, redactSecrets, redactValue } from '@ccat/errors';
import { heading, ratio, report } from './stats.js';

const N = Number(process.env['BENCH_TEXTS'] ?? 20_000);
const ungated = createRedactor({ only: true, patterns: DEFAULT_SECRET_PATTERNS });

/** The subject, body and contexts the monitor stores for stalled task `i` (recovery-handlers stallRecords). */
function stallTexts(i: number): { texts: string[]; context: Record<string, unknown> } {
  const subject = `raw_data_package ${i} stalled and was reset for retry`;
  const body = [
    `What: raw_data_package ${i}, attempt 0 (heartbeat_expired)`,
    'Error: STALLED: stalled: no heartbeat before its deadline (process dead or frozen); its process ran other tasks too, so no retry is used (shared stall 1, alone from 2)',
    `Where: worker-${i % 7}`,
    'Retries: 0 of 5 used',
    'Done: Reset to PENDING as attempt 1; it runs again in about 1 s.',
    'To do: Nothing, unless this repeats.',
  ].join('\n');
  const context = {
    reason: 'heartbeat_expired',
    counted: 'shared',
    claimedBy: `worker-${i % 7}`,
    retryCount: 0,
    maxRetries: 5,
    stallCount: 1,
    runAlone: false,
    overdueMs: 1234 + i,
    worker: `worker-${i % 7}`,
    host: 'cha-node-3',
  };
  return { texts: [subject, body, JSON.stringify(context)], context };
}

function time(run: () => void): number {
  const start = performance.now();
  run();
  return performance.now() - start;
}

function side(label: string, withSecret: boolean): void {
  const inputs = Array.from({ length: N }, (_, i) => {
    const t = stallTexts(i);
    if (withSecret) t.texts[1] += `\nconnect postgres://ccat:Hunter${i}@db:5432/ops failed`;
    return t;
  });
  // Warm-up of both, then each measured over every stall's texts and its context walk.
  for (const f of [redactSecrets, ungated]) for (const t of inputs.slice(0, 500)) t.texts.map((x) => f(x));
  let check = 0;
  const run = (f: (text: string) => string) => () => {
    for (const t of inputs) {
      for (const x of t.texts) check += f(x).length;
      check += JSON.stringify(redactValue(t.context, { redact: f })).length;
    }
  };
  const fastMs = time(run(redactSecrets));
  const fastCheck = check;
  check = 0;
  const slowMs = time(run(ungated));
  if (check !== fastCheck)
    throw new Error(`bench/redact: the two redactors disagree (${fastCheck} vs ${check} chars)`);
  const fast = report(`${label}: redactSecrets, µs per stall`, (fastMs * 1000) / N, 'µs');
  const slow = report(`${label}: same patterns ungated, µs per stall`, (slowMs * 1000) / N, 'µs');
  ratio(`${label}: ungated / redactSecrets (time)`, slow, fast);
}

heading(`redactor on a stall's subject, body and contexts, ${N.toLocaleString('en-US')} stalls per side`);
side('no secret', false);
side('one secret in the body', true);
