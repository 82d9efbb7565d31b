/**
 * Milliseconds since the epoch by a monotonic clock: the wall clock at process start plus
 * `performance.now()` (CLOCK_MONOTONIC). The monitor's waits (reconciliation's absence waits, retry
 * backoff, the grace after failed passes, the loop's sleep) are measured by it, so a step of the host's
 * clock (NTP at boot, `date -s`) neither shortens a wait, which could recover a live task, nor
 * stretches one. Never compare it with database or Redis times: those are the servers' clocks.
 */
export const monotonicNow = (): number => performance.timeOrigin + performance.now();
