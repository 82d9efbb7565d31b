// A BullMQ worker at BullMQ's own defaults (lockDuration 30 s, stalledInterval 30 s) whose job never
// ends: the baseline victim of bench/liveness. Prints JSON lines: `ready`, then `active` with the job id.
// Usage: node dist/bullmq-victim.js <redisUrl> <queue> <prefix>
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, queue, prefix] = process.argv.slice(2);
if (url === undefined || queue === undefined || prefix === undefined) {
  console.error('usage: bullmq-victim <redisUrl> <queue> <prefix>');
  process.exit(2);
}
const connection = new Redis(url, { maxRetriesPerRequest: null });
const worker = new Worker(
  queue,
  async (job) => {
    console.log(JSON.stringify({ msg: 'active', jobId: job.id }));
    // Hangs until the process is killed, as a task on a dead host would.
    await new Promise<never>(() => undefined);
  },
  { connection, prefix, concurrency: 1 },
);
await worker.waitUntilReady();
console.log(JSON.stringify({ msg: 'ready' }));
