-- The task heartbeat keys, in the order every task script takes them (a script may take fewer).
-- All share the deployment's hash tag.
local deadlinesKey, progressDeadlinesKey, detailsKey, progressKey, corruptKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- Removes a task everywhere.
local function forget(id)
  redis.call('ZREM', deadlinesKey, id)
  redis.call('ZREM', progressDeadlinesKey, id)
  redis.call('HDEL', detailsKey, id)
  redis.call('HDEL', progressKey, id)
end
