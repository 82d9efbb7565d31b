-- The earliest deadlines and progress deadlines. Includes: prelude, task-keys.
-- KEYS: deadlines, progressDeadlines.
-- Returns { now, [id, deadline ...], [id, progressDeadline ...] }.
local skip = tonumber(ARGV[1] or '0') or 0 -- how many members the caller will pass over: returns skip + 1 of each set
return { now, redis.call('ZRANGE', deadlinesKey, 0, skip, 'WITHSCORES'), redis.call('ZRANGE', progressDeadlinesKey, 0, skip, 'WITHSCORES') }
