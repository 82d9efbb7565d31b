/* global process, console */
// A worker process stand-in for reconcile-flush.test.ts: beats one task (1 s interval, 3 s
// liveness) and writes its health record with those bounds and since when it claims (database
// time), re-registering the task when a beat reports it missing (as the task runner does). The
// test SIGSTOPs/SIGCONTs it.
import { HeartbeatEmitter, ServiceHealthReporter } from '@ccat/heartbeat';
import { Redis } from 'ioredis';

const [keyPrefix, member, name, intervalS, livenessS, claimsSince] = process.argv.slice(2);
const intervalMs = Number(intervalS);
const livenessMs = Number(livenessS);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const health = new ServiceHealthReporter({
  redis,
  keyPrefix,
  serviceType: 'worker',
  serviceName: name,
  ttlMs: livenessMs,
  refreshMs: intervalMs,
  info: { heartbeatIntervalMs: intervalMs, livenessTimeoutMs: livenessMs, claimsSince: Number(claimsSince) },
});
await health.start();
const emitter = new HeartbeatEmitter({ redis, keyPrefix, intervalMs, timeoutMs: livenessMs, workerId: name });
await emitter.start();
const track = async () => {
  const h = await emitter.track(member);
  h.signal.addEventListener(
    'abort',
    () => {
      console.log(`re-register ${Date.now()}`);
      void track();
    },
    { once: true },
  );
};
await track();
console.log('ready');
process.on('SIGTERM', async () => {
  await emitter.close().catch(() => undefined);
  await health.close().catch(() => undefined);
  redis.disconnect();
  process.exit(0);
});
