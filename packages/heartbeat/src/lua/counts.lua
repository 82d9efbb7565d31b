-- Gauges. Includes: prelude, task-keys. KEYS: deadlines, progressDeadlines, details, progress, corrupt.
-- Returns { now, inFlight, expiredDue, stalledDue, corrupt }.
return {
  now,
  redis.call('ZCARD', deadlinesKey),
  redis.call('ZCOUNT', deadlinesKey, '-inf', ms(now)),
  redis.call('ZCOUNT', progressDeadlinesKey, '-inf', ms(now)),
  redis.call('HLEN', corruptKey),
}
