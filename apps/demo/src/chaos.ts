// The chaos soak's disturbances, on a schedule: workers killed (SIGKILL) and frozen (SIGSTOP, then
// SIGCONT), one Redis restart (all keys lost), an SMTP outage, dropped PostgreSQL connections.
import { formatDuration, sleep } from '@ccat/errors';
import type { PrivateRedis, TestSmtp } from '@ccat/test-support';
import type { Supervisor } from './supervisor.js';

export interface ChaosDeps {
  readonly supervisor: Supervisor;
  readonly redis: PrivateRedis;
  readonly smtp: TestSmtp;
  readonly dropConnections: () => Promise<number>;
  readonly note: (text: string) => void;
}

export interface ChaosLog {
  readonly kills: number;
  readonly freezes: number;
  readonly redisRestarts: number;
  readonly smtpOutages: number;
  readonly droppedConnections: number;
  readonly actions: string[];
}

/** Runs the schedule until `signal` aborts or `windowMs` passes. */
export async function runChaos(deps: ChaosDeps, windowMs: number, signal: AbortSignal): Promise<ChaosLog> {
  const log = {
    kills: 0,
    freezes: 0,
    redisRestarts: 0,
    smtpOutages: 0,
    droppedConnections: 0,
    actions: [] as string[],
  };
  const t0 = Date.now();
  const act = (text: string) => {
    const line = `+${Math.round((Date.now() - t0) / 1000)} s ${text}`;
    log.actions.push(line);
    deps.note(line);
  };
  const drop = async () => {
    const n = await deps.dropConnections();
    log.droppedConnections += n;
    act(`terminated ${n} PostgreSQL connections of the demo database`);
  };
  const once: { at: number; run: () => Promise<void> }[] = [
    {
      at: 8000,
      run: async () => {
        await deps.redis.restart();
        log.redisRestarts++;
        act('Redis restarted (every heartbeat, queue and job lost)');
      },
    },
    {
      at: 12_000,
      run: async () => {
        await deps.smtp.stop();
        log.smtpOutages++;
        act('SMTP server down');
        await sleep(8000, signal);
        await deps.smtp.start();
        act('SMTP server back');
      },
    },
    { at: 15_000, run: () => drop() },
    { at: 30_000, run: () => drop() },
  ];
  const pending = [...once];
  while (!signal.aborted && Date.now() - t0 < windowMs) {
    await sleep(3000 + Math.random() * 4000, signal);
    if (signal.aborted) break;
    const elapsed = Date.now() - t0;
    while (pending.length > 0 && pending[0]!.at <= elapsed) {
      const next = pending.shift()!;
      // Outages run in the background so the kills go on meanwhile.
      void next.run().catch((e: unknown) => act(`chaos action failed: ${(e as Error).message}`));
    }
    if (Math.random() < 0.5) {
      const name = deps.supervisor.killRandomWorker();
      if (name) {
        log.kills++;
        act(`SIGKILL ${name}`);
      }
    } else {
      const ms = 4500 + Math.random() * 3000;
      const name = deps.supervisor.freezeRandomWorker(ms);
      if (name) {
        log.freezes++;
        act(`SIGSTOP ${name} for ${formatDuration(ms)}`);
      }
    }
  }
  // Whatever was scheduled and not run yet runs now, so every disturbance happens once.
  for (const p of pending)
    await p.run().catch((e: unknown) => act(`chaos action failed: ${(e as Error).message}`));
  return log;
}
